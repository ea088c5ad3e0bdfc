package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// labelEnv and labelProxyEnv are state.LabelEnv and state.LabelProxyEnv;
// repeated here so that testenv does not depend on the model it helps to
// test.
const (
	labelEnv      = "reconciler.env"
	labelProxyEnv = "reconciler.proxy-env"
)

// labelContent marks an imported test image with the digest of its content,
// so that an image already tagged with the same content is reused instead of
// imported again (by this process or by the test binary of another package).
const labelContent = "reconciler.test.content"

// Docker returns a client for the engine of the environment (DOCKER_HOST or
// the default socket), with the API version negotiated. When the engine does
// not answer a ping within 5s it skips t, or fails it under CI=true (see
// SkipOrFail). The client is closed when t ends.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		SkipOrFail(t, "docker engine not reachable: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		SkipOrFail(t, "docker engine not reachable: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// AppImage makes the demo app (demo/app) an image tagged ref, without
// pulling anything, and returns its image ID. The image has the static
// binary at /app/server, ENTRYPOINT ["/app/server"], CMD ["serve"] and EXPOSE 8080.
// Equal refs give the same image within a process. Images are left in place:
// they are cheap and shared by tests.
func AppImage(t testing.TB, ref string) string {
	t.Helper()
	return AppImageVariant(t, ref, "")
}

// AppImageVariant is AppImage with a file /variant holding variant (none
// when variant is ""): two refs with different variants are different
// images, as a "v2" of a service must be. Results are cached per (ref,
// variant) within the process; it is safe for concurrent use.
func AppImageVariant(t testing.TB, ref, variant string) string {
	t.Helper()
	return binaryImage(t, "./demo/app", ref, variant)
}

// MCPImage makes the MCP test server (internal/mcptest/mcpd) an image
// tagged ref, laid out as AppImageVariant's: the static binary at
// /app/server, CMD ["serve"], EXPOSE 8080, and /variant.
func MCPImage(t testing.TB, ref, variant string) string {
	t.Helper()
	return binaryImage(t, "./internal/mcptest/mcpd", ref, variant)
}

// binaryImage imports the static binary of the package pkg of this
// module as ref, cached per (ref, variant) within the process.
func binaryImage(t testing.TB, pkg, ref, variant string) string {
	t.Helper()
	bin, err := buildBinary(pkg)
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	cli := Docker(t)

	key := ref + "\x00" + variant
	images.mu.Lock()
	defer images.mu.Unlock()
	if id, ok := images.ids[key]; ok {
		return id
	}
	id, err := importApp(cli, bin, ref, variant)
	if err != nil {
		t.Fatalf("import %s as %s: %v", pkg, ref, err)
	}
	images.ids[key] = id
	return id
}

var images = struct {
	mu  sync.Mutex
	ids map[string]string
}{ids: map[string]string{}}

// importApp imports bin (and /variant) as ref, unless ref already names an
// image with the same content.
func importApp(cli *client.Client, bin []byte, ref, variant string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h := sha256.New()
	h.Write(bin)
	h.Write([]byte{0})
	h.Write([]byte(variant))
	h.Write([]byte("layout: /app/server")) // bump when the image layout changes
	content := hex.EncodeToString(h.Sum(nil)[:16])
	if img, err := cli.ImageInspect(ctx, ref); err == nil && img.Config != nil && img.Config.Labels[labelContent] == content {
		return img.ID, nil
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	files := []struct {
		name string
		mode int64
		data []byte
	}{{"app/server", 0o755, bin}}
	if variant != "" {
		files = append(files, struct {
			name string
			mode int64
			data []byte
		}{"variant", 0o644, []byte(variant)})
	}
	// /app is a directory, as in real images, so files can go to /app/config.yaml.
	if err := tw.WriteHeader(&tar.Header{Name: "app/", Mode: 0o755, ModTime: now, Typeflag: tar.TypeDir}); err != nil {
		return "", err
	}
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}

	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{
			`ENTRYPOINT ["/app/server"]`,
			`CMD ["serve"]`,
			`EXPOSE 8080`,
			`LABEL ` + labelContent + `=` + content,
		},
	})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if err := drain(rc); err != nil {
		return "", err
	}
	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("inspect after import: %w", err)
	}
	return img.ID, nil
}

// drain reads a JSON message stream and returns the first error in it.
func drain(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return m.Error
		}
	}
}

// built is one package's static binary, built once per process.
type built struct {
	once sync.Once
	bin  []byte
	err  error
}

var binaries = struct {
	mu   sync.Mutex
	pkgs map[string]*built
}{pkgs: map[string]*built{}}

// buildBinary builds the package pkg ("./demo/app") of this module once
// per process as a static binary and returns its bytes.
func buildBinary(pkg string) ([]byte, error) {
	binaries.mu.Lock()
	app, ok := binaries.pkgs[pkg]
	if !ok {
		app = &built{}
		binaries.pkgs[pkg] = app
	}
	binaries.mu.Unlock()
	app.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			app.err = err
			return
		}
		dir, err := os.MkdirTemp("", "reconciler-app-")
		if err != nil {
			app.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "app")
		cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			app.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
			return
		}
		app.bin, app.err = os.ReadFile(out)
	})
	return app.bin, app.err
}

// moduleRoot returns the directory of go.mod: from `go env GOMOD`, else by
// walking up from the working directory.
func moduleRoot() (string, error) {
	if b, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if p := strings.TrimSpace(string(b)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// RemoveEnvContainers registers a cleanup on t that force-removes every
// container of env: those labelled reconciler.env=env, and those whose name
// starts with "env-" (the foreign containers a test made for env). Tests that
// deploy env call it first, so that nothing is left even when they fail.
// Calling it inside a t.Cleanup function works as well.
func RemoveEnvContainers(t testing.TB, cli *client.Client, env string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs()})
		if err != nil {
			t.Errorf("cleanup env %s: list containers: %v", env, err)
			return
		}
		for _, c := range list {
			if !ofEnv(c, env) {
				continue
			}
			err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			if err != nil && !cerrdefs.IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
				t.Errorf("cleanup env %s: remove %s: %v", env, c.ID[:12], err)
			}
		}
		// The env's network (reconciler creates it, named env by default),
		// once its containers are gone.
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", labelEnv+"="+env))})
		if err != nil {
			t.Errorf("cleanup env %s: list networks: %v", env, err)
			return
		}
		for _, n := range nets {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("cleanup env %s: remove network %s: %v", env, n.Name, err)
			}
		}
	})
}

func ofEnv(c container.Summary, env string) bool {
	if c.Labels[labelEnv] == env || c.Labels[labelProxyEnv] == env {
		return true
	}
	for _, n := range c.Names {
		if strings.HasPrefix(strings.TrimPrefix(n, "/"), env+"-") {
			return true
		}
	}
	return false
}
