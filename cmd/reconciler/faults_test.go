package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// dockerProxy forwards a unix socket to the Docker engine's until Cut, which
// closes the listener and every connection: the engine becomes unreachable
// in the middle of whatever a client was doing.
type dockerProxy struct {
	Sock string
	ln   net.Listener
	mu   sync.Mutex
	cut  bool
	conn []net.Conn
}

func startDockerProxy(t *testing.T) *dockerProxy {
	t.Helper()
	target := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		target = strings.TrimPrefix(h, "unix://")
	} else if h != "" {
		testenv.SkipOrFail(t, "DOCKER_HOST=%s is not a unix socket; the proxy only forwards unix sockets", h)
	}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "rdp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &dockerProxy{Sock: filepath.Join(dir, "docker.sock")}
	p.ln, err = net.Listen("unix", p.Sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Cut)
	go func() {
		for {
			c, err := p.ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.cut {
				p.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			p.conn = append(p.conn, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

// Cut makes the engine unreachable through the proxy from now on.
func (p *dockerProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conn {
		c.Close()
	}
}

// startRegistry runs Debian's docker-registry on a free loopback port with
// storage in a temp dir, and returns its host:port. It holds no images.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		testenv.SkipOrFail(t, "docker-registry not installed (apt-get install -y docker-registry): %v", err)
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	conf := fmt.Sprintf("version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %q}\n", dir, addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "docker-registry to listen", 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

// wait waits for the child to exit on its own and returns its exit code and
// its whole stderr.
func (c *child) wait(t *testing.T) (int, string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case _, ok := <-c.lines:
			if ok {
				continue
			}
			_ = c.cmd.Wait()
			return c.cmd.ProcessState.ExitCode(), c.all.String()
		case <-deadline:
			t.Fatalf("reconciler apply did not exit within 60s:\n%s", c.all.String())
		}
	}
}

// TestFaults injects one fault into an upgrade v1 → v2 each: the apply
// must exit 1 with a message that names what failed and what to do, the
// old version must keep serving through a valid nginx configuration, and
// once the fault is gone the next apply must converge.
func TestFaults(t *testing.T) {
	t.Parallel()
	type faultCase struct {
		name string
		// v2 varies the upgrade: extra YAML under web, env lines.
		webExtra, webEnv string
		// reload and test replace the nginx commands of v2 ("" keeps them).
		reload, test string
		// inject sets the fault up; it returns the undo. It may commit.
		inject func(t *testing.T, w *world) func()
		// child runs the apply as a subprocess with extra environment and
		// acts on its log (the Docker cut); nil runs it in-process.
		child func(t *testing.T, w *world) (int, string)
		want  []string // in the error output
		// keepsNew: the new container cannot be removed (the engine is
		// gone); the next apply removes it.
		keepsNew bool
	}
	var regMu sync.Mutex
	var reg string
	registry := func(t *testing.T) string {
		regMu.Lock()
		defer regMu.Unlock()
		if reg == "" {
			reg = startRegistry(t)
		}
		return reg
	}
	cases := []faultCase{
		{name: "image-pull-failure", inject: func(t *testing.T, w *world) func() {
			w.commitYAML(strings.Replace(w.envYAML(spec{version: "v2", config: "a: 1\n"}),
				"image: reconciler-test/app:v1", "image: "+registry(t)+"/missing/app:v2", 1), "v2 not in the registry")
			return func() {}
		}, want: []string{"REG/missing/app:v2", "manifest unknown", "the tag or digest may not exist", "nothing was changed"}},
		{name: "registry-down", inject: func(t *testing.T, w *world) func() {
			w.commitYAML(strings.Replace(w.envYAML(spec{version: "v2", config: "a: 1\n"}),
				"image: reconciler-test/app:v1", fmt.Sprintf("image: 127.0.0.1:%d/app:v2", testenv.FreePort(t)), 1), "registry down")
			return func() {}
		}, want: []string{"127.0.0.1:", "connection refused", "is reachable from this host", "nothing was changed"}},
		{name: "docker-unreachable-mid-apply", webEnv: "      STARTUP_DELAY: 2s\n",
			child: func(t *testing.T, w *world) (int, string) {
				p := startDockerProxy(t)
				c := w.startApplyEnv("DOCKER_HOST=unix://" + p.Sock)
				// The health wait polls the engine (is the container running?).
				c.waitMsg(t, "start web/green")
				p.Cut()
				return c.wait(t)
			}, keepsNew: true, want: []string{"Cannot connect to the Docker daemon", "wait-healthy web/green", "traffic is on the version that served before", "run apply again once the cause is fixed"}},
		{name: "nginx-test-failure", webExtra: "    serverName: fault.test\n", test: "echo emerg test failed on purpose >&2; exit 1",
			// The pre-deploy check runs the test first: nothing changes.
			want: []string{"nginx -t failed", "test failed on purpose", "nothing was changed"}},
		{name: "nginx-reload-failure", webExtra: "    serverName: fault.test\n", reload: "echo reload failed on purpose >&2; exit 1",
			want: []string{"nginx reload failed", "reload failed on purpose", "check that nginx is running", "restored"}},
		{name: "confdir-not-writable", inject: func(t *testing.T, w *world) func() {
			if out, err := exec.Command("chattr", "+i", w.ngx.ConfDir).CombinedOutput(); err != nil {
				testenv.SkipOrFail(t, "chattr +i (immutable directory) not available here: %v %s", err, out)
			}
			return func() { exec.Command("chattr", "-i", w.ngx.ConfDir).Run() }
		}, want: []string{"switch " + "ENV-web to green", "operation not permitted", "is writable by reconciler", "traffic is on the version that served before"}},
		{name: "confdir-full", inject: func(t *testing.T, w *world) func() { return fillConfDir(t, w) },
			want: []string{"switch " + "ENV-web to green", "no space left on device", "has free space", "traffic is on the version that served before"}},
		{name: "health-timeout", webEnv: "      STARTUP_DELAY: 30s\n",
			want: []string{"not healthy within startTimeout 8s", "raise health.startTimeout", "rolled back", "traffic is on the version that served before"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
			w.mustRun(exitOK, "apply")
			w.wantServing("v1")
			before := w.containers()

			v2 := w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", tls: tc.webExtra, webEnv: tc.webEnv})
			good := w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", tls: tc.webExtra})
			if tc.reload != "" {
				v2 = replaceLine(v2, "  reload: ", "  reload: "+tc.reload)
			}
			if tc.test != "" {
				v2 = replaceLine(v2, "  test: ", "  test: "+tc.test)
			}
			w.commitYAML(v2, "v2 with a fault")
			undo := func() {}
			if tc.inject != nil {
				undo = tc.inject(t, w)
			}
			t.Cleanup(undo)

			var code int
			var out string
			if tc.child != nil {
				code, out = tc.child(t, w)
			} else {
				r := w.run("apply")
				code, out = r.code, r.stderr
			}
			t.Logf("apply with the fault, exit %d:\n%s", code, out)
			if code != exitFailed {
				t.Fatalf("exit %d, want %d", code, exitFailed)
			}
			for _, want := range tc.want {
				want = strings.ReplaceAll(strings.ReplaceAll(want, "ENV", w.env), "REG", reg)
				if !strings.Contains(out, want) {
					t.Errorf("the error output lacks %q", want)
				}
			}
			w.wantServing("v1")
			if out, err := exec.Command("sh", "-c", w.ngx.Test).CombinedOutput(); err != nil {
				t.Fatalf("nginx -t after the fault: %v\n%s", err, out)
			}
			if after := w.containers(); !tc.keepsNew && fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("containers after the fault %v, want %v", after, before)
			}

			// The fault gone, the upgrade goes through.
			undo()
			w.commitYAML(good, "v2")
			w.mustRun(exitOK, "apply")
			w.wantServing("v2")
			w.wantConverged("web")
		})
	}
}

// replaceLine replaces the line of s that starts with prefix.
func replaceLine(s, prefix, line string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = line
		}
	}
	return strings.Join(lines, "\n")
}

// fillConfDir mounts a small tmpfs over the world's confDir with the files
// it held, and fills it up. It returns the undo.
func fillConfDir(t *testing.T, w *world) func() {
	t.Helper()
	dir := w.ngx.ConfDir
	saved := t.TempDir()
	if out, err := exec.Command("cp", "-a", dir+"/.", saved).CombinedOutput(); err != nil {
		t.Fatalf("save confDir: %v %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.SkipOrFail(t, "mount a small tmpfs (needs CAP_SYS_ADMIN): %v %s", err, out)
	}
	undo := func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL {
			t.Errorf("unmount %s: %v", dir, err)
		}
	}
	if out, err := exec.Command("cp", "-a", saved+"/.", dir).CombinedOutput(); err != nil {
		undo()
		t.Fatalf("restore confDir on tmpfs: %v %s", err, out)
	}
	// Fill every block; the rest of the write fails with ENOSPC.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		undo()
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	f.Close()
	return undo
}

// waitMsg reads the child's log until msg; it fails when the child ends
// first.
func (c *child) waitMsg(t *testing.T, msg string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				_ = c.cmd.Wait()
				t.Fatalf("reconciler apply ended before %q:\n%s", msg, c.all.String())
			}
			if m == msg {
				return
			}
		case <-deadline:
			t.Fatalf("reconciler apply did not log %q within 30s:\n%s", msg, c.all.String())
		}
	}
}
