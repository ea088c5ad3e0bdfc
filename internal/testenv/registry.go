package testenv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"golang.org/x/crypto/bcrypt"
)

// Registry is a private Docker registry (Debian's docker-registry, the
// distribution project's server) on 127.0.0.1 with htpasswd authentication
// and filesystem storage in a temp dir. The engine talks plain HTTP to it
// (127.0.0.0/8 is an insecure registry by default).
type Registry struct {
	Addr     string // 127.0.0.1:PORT
	User     string
	Password string
}

// StartRegistry starts a registry that accepts user:password; it stops when
// t ends. Without docker-registry installed it skips t, or fails under
// CI=true.
func StartRegistry(t testing.TB, user, password string) *Registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		SkipOrFail(t, "docker-registry not installed (apt-get install docker-registry; see scripts/deps.sh)")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Registry{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), User: user, Password: password}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: %s
  secret: reconciler-test
auth:
  htpasswd:
    realm: reconciler-test
    path: %s/htpasswd
`, dir, r.Addr, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry not ready on %s after 10s\n%s", r.Addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DockerConfig writes a Docker CLI config directory whose auths hold
// user:password for this registry and returns it, for DOCKER_CONFIG.
func (r *Registry) DockerConfig(t testing.TB, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{r.Addr: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
	}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Push tags the local image src as r.Addr/repoTag, pushes it with the
// registry's credentials and returns the manifest digest. The local tag is
// removed when t ends.
func (r *Registry) Push(t testing.TB, cli *client.Client, src, repoTag string) string {
	t.Helper()
	ctx := context.Background()
	ref := r.Addr + "/" + repoTag
	if err := cli.ImageTag(ctx, src, ref); err != nil {
		t.Fatalf("tag %s: %v", ref, err)
	}
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), ref, image.RemoveOptions{}) })
	auth, _ := registry.EncodeAuthConfig(registry.AuthConfig{Username: r.User, Password: r.Password, ServerAddress: r.Addr})
	rc, err := cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	defer rc.Close()
	digest := ""
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		if m.Error != nil {
			t.Fatalf("push %s: %v", ref, m.Error)
		}
		if m.Aux != nil {
			var aux struct{ Digest string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
				digest = aux.Digest
			}
		}
	}
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("push %s: no digest reported", ref)
	}
	return digest
}
