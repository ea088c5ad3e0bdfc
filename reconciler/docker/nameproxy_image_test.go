package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// TestProxyExecutableBeside: the name proxy binary beside the reconciler
// is taken (through a symlink too); without it, the reconciler itself.
func TestProxyExecutableBeside(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "reconciler")
	if err := os.WriteFile(exe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := proxyExecutableBeside(exe)
	if err != nil || got != exe {
		t.Fatalf("alone: %q, %v; want the reconciler itself", got, err)
	}
	real := filepath.Join(t.TempDir(), "nameproxy")
	if err := os.WriteFile(real, []byte("y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, ProxyBinaryName)); err != nil {
		t.Fatal(err)
	}
	got, err = proxyExecutableBeside(exe)
	if err != nil || got != real {
		t.Fatalf("beside: %q, %v; want %s", got, err, real)
	}
	if err := os.Remove(real); err != nil {
		t.Fatal(err)
	}
	if got, err := proxyExecutableBeside(exe); err != nil || got != exe {
		t.Fatalf("dangling link: %q, %v; want the reconciler itself", got, err)
	}
}

// TestNameProxyFromOwnBinary: with cmd/nameproxy built beside the
// reconciler, EnsureNameProxy builds the proxy image from it (a few MB,
// not the reconciler's tens), the proxy starts from it, and the plan's
// check command (reconciler.NameCheckCommand, the same for proxies made
// from the reconciler binary) answers the marker's color inside it.
func TestNameProxyFromOwnBinary(t *testing.T) {
	cli := testenv.Docker(t)
	env := testenv.UniqueEnv(t)
	testenv.RemoveEnvContainers(t, cli, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bindir := t.TempDir()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build cmd/nameproxy: %v", err)
	}
	build := exec.Command(gobin, "build", "-trimpath", "-o", filepath.Join(bindir, ProxyBinaryName), "../../cmd/nameproxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/nameproxy: %v\n%s", err, out)
	}
	fakeExe := filepath.Join(bindir, "reconciler")
	if err := os.WriteFile(fakeExe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	osExecutable = func() (string, error) { return fakeExe, nil }
	t.Cleanup(func() { osExecutable = os.Executable })

	r := New(cli, zaptest.NewLogger(t))
	ref, err := ProxyImageRef()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After RemoveEnvContainers' cleanup (cleanups run last first):
		// the image is this test's own build, unused once its proxy is gone.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, ref, image.RemoveOptions{})
		r.forgetProxyImage()
	})
	names := t.TempDir()
	if err := os.Chmod(names, 0o755); err != nil {
		t.Fatal(err)
	}
	const port = 8080
	p := reconciler.NameProxySpec{Name: state.NameProxyName(env, "api"), Env: env, Service: "api", Port: port, Network: env, Dir: names}
	if err := r.EnsureNameProxy(ctx, p); err != nil {
		t.Fatal(err)
	}
	ii, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatalf("proxy image %s: %v", ref, err)
	}
	if ii.Size > 16<<20 {
		t.Errorf("proxy image is %d bytes, want a few MB (the name proxy binary, not the reconciler)", ii.Size)
	}
	if err := os.WriteFile(filepath.Join(names, "api"), []byte("green\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond) // polls the proxy's start, with a deadline
	defer tick.Stop()
	for {
		code, out, err := r.Exec(ctx, p.Name, reconciler.NameCheckCommand(port))
		if err == nil && code == 0 && strings.TrimSpace(out) == "green" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("name check in the proxy: exit %d, %q, %v; want green", code, out, fmt.Sprint(err))
		}
		<-tick.C
	}
}
