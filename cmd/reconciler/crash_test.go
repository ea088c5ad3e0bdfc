package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/state"
)

// childEnv, when set in the environment, makes the test binary act as the
// reconciler command itself (see TestMain). Crash tests start it as a
// subprocess so that they can SIGKILL a real process at a chosen step,
// without test hooks in the production code.
const childEnv = "RECONCILER_TEST_AS_MAIN"

// awsHelperEnv passes the AWS helper TestMain built (testAWSHelper) to
// the test binary's children; only the tests set it.
const awsHelperEnv = "RECONCILER_TEST_AWS_HELPER"

func TestMain(m *testing.M) {
	// As a name proxy's entrypoint (the proxy image is built from the
	// running executable, this test binary) and as a child apply, the
	// binary is reconciler itself.
	if os.Getenv(childEnv) == "1" || len(os.Args) > 1 && os.Args[1] == "name-proxy" {
		testAWSHelper = os.Getenv(awsHelperEnv)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// The commands reach AWS (the fake) through a freshly built helper.
	dir, err := os.MkdirTemp("", "reconciler-aws-test-")
	if err == nil {
		testAWSHelper, err = testenv.BuildAWSHelper(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(awsHelperEnv, testAWSHelper)
	removeProxyImage() // left by an earlier run that was killed
	code := m.Run()
	removeProxyImage()
	os.RemoveAll(dir)
	os.Exit(code)
}

// removeProxyImage removes the name proxy images that no container uses:
// the one built from this test binary (each build is a new binary, so a
// new image) after the run, and before it those that earlier runs left
// (image retention would count them in prune's report).
func removeProxyImage() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := docker.Connect(ctx)
	if err != nil {
		return
	}
	defer cli.Close()
	list, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", docker.ProxyImageRepo))})
	if err != nil {
		return
	}
	for _, im := range list {
		_, _ = cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: false, PruneChildren: true})
	}
}

// child is reconciler apply running as a separate process.
type child struct {
	cmd   *exec.Cmd
	lines chan string // log messages ("msg" of each JSON line), closed at EOF
	all   strings.Builder
}

// startApply starts `reconciler apply --log-format json` for w in a
// subprocess. It is killed when the test ends, whatever happened.
func (w *world) startApply() *child {
	w.t.Helper()
	return w.startApplyEnv()
}

// startApplyEnv is startApply with extra environment variables (KEY=value).
func (w *world) startApplyEnv(env ...string) *child {
	w.t.Helper()
	cmd := exec.Command(os.Args[0], "apply", "--log-format", "json",
		"--env", w.env, "--repo", w.repo.Dir, "--state-dir", w.stateDir)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start reconciler apply: %v", err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.all.WriteString(line + "\n")
			var m struct {
				Msg string `json:"msg"`
			}
			if json.Unmarshal([]byte(line), &m) == nil {
				c.lines <- m.Msg
			}
		}
	}()
	w.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// killAt waits until the child logs a message for which at returns true and
// then SIGKILLs it. It fails the test when the child ends first or the
// deadline passes.
func (c *child) killAt(t *testing.T, what string, at func(msg string) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case msg, ok := <-c.lines:
			if !ok {
				_ = c.cmd.Wait()
				t.Fatalf("reconciler apply ended before %q:\n%s", what, c.all.String())
			}
			if at(msg) {
				c.kill(t)
				return
			}
		case <-deadline:
			t.Fatalf("reconciler apply did not reach %q within 30s:\n%s", what, c.all.String())
		}
	}
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 reconciler: %v", err)
	}
	err := c.cmd.Wait()
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("reconciler apply was not killed by SIGKILL (it had ended: %v):\n%s", err, c.all.String())
	}
}

// commitYAML commits an env file given as text.
func (w *world) commitYAML(yaml, msg string) {
	w.t.Helper()
	w.repo.Write("envs/"+w.env+".yaml", yaml)
	w.repo.Commit(msg)
}

// wantConverged checks what every crash must leave after one more apply:
// diff in sync, exactly one running container per service named and
// labelled for its color, nginx sending traffic to that color, and a
// configuration that passes nginx -t. Beside it, a service may keep its
// previous release: one stopped (exited) container of the other color.
func (w *world) wantConverged(services ...string) {
	w.t.Helper()
	w.mustRun(exitOK, "diff")
	list, err := w.cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", state.LabelEnv+"="+w.env))})
	if err != nil {
		w.t.Fatal(err)
	}
	per, kept := map[string][]string{}, map[string][]string{}
	for _, c := range list {
		name := strings.TrimPrefix(c.Names[0], "/")
		svc, color := c.Labels[state.LabelService], c.Labels[state.LabelColor]
		if name != state.ContainerName(w.env, svc, state.Color(color)) {
			w.t.Errorf("container %s: labels service=%q color=%q", name, svc, color)
		}
		switch c.State {
		case "running":
			per[svc] = append(per[svc], color)
		case "exited":
			kept[svc] = append(kept[svc], color)
		default:
			w.t.Errorf("container %s: state %s", name, c.State)
		}
	}
	for _, svc := range services {
		if len(per[svc]) != 1 {
			w.t.Fatalf("service %s has running containers of colors %v, want exactly one (all: %v)", svc, per[svc], per)
		}
		if k := kept[svc]; len(k) > 1 || len(k) == 1 && k[0] == per[svc][0] {
			w.t.Fatalf("service %s keeps stopped containers %v beside %v, want at most the other color (the previous release)", svc, k, per[svc])
		}
	}
	if len(per) != len(services) {
		w.t.Fatalf("containers of services %v, want only %v", per, services)
	}
	live := state.Blue
	if _, err := os.Stat(filepath.Join(w.ngx.ConfDir, state.MarkerFile(w.env, "web"))); err == nil {
		live = state.Green
	}
	if per["web"][0] != string(live) {
		w.t.Fatalf("nginx sends web's traffic to %s, but the container is %s", live, per["web"][0])
	}
	if out, err := exec.Command("sh", "-c", w.ngx.Test).CombinedOutput(); err != nil {
		w.t.Fatalf("nginx -t after recovery: %v\n%s", err, out)
	}
}

// TestCrashRecovery kills reconciler apply with SIGKILL at each step of a
// blue-green upgrade while a keep-alive client sends requests, then applies
// again. Every case must converge, leave no orphan container and a valid
// nginx configuration, and the client must see no failed request.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	type crashCase struct {
		name string
		// v2 changes the upgrade: extra YAML under web (at 4 spaces) and env.
		webExtra, webEnv string
		// gate makes the reload command block until the test opens it, so
		// that the kill can land after the nginx write, before the reload.
		gate bool
		at   func(env string) func(msg string) bool
	}
	is := func(want string) func(string) func(string) bool {
		return func(env string) func(string) bool {
			want := strings.ReplaceAll(want, "ENV", env)
			return func(msg string) bool { return msg == want }
		}
	}
	cases := []crashCase{
		{name: "after-start", at: is("start web/green")},
		// STARTUP_DELAY keeps the new color unhealthy for a while, so a
		// kill right after its start lands inside the health wait.
		{name: "during-health-wait", webEnv: "      STARTUP_DELAY: 1500ms\n", at: is("start web/green")},
		// A serverName change makes the upgrade rewrite the nginx file.
		{name: "after-write-before-reload", webExtra: "    serverName: crash.test\n", gate: true},
		{name: "after-reload", webExtra: "    serverName: crash.test\n", at: is("write-nginx nginx ENV-web.conf")},
		{name: "after-switch", at: is("switch web → green")},
		{name: "during-drain", at: is("draining web/blue")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.commit(spec{version: "v1", config: "a: 1\n", worker: true}, "v1")
			w.mustRun(exitOK, "apply")
			w.wantServing("v1")
			reloads := w.reloadCount()

			v2 := w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", worker: true,
				tls: tc.webExtra, webEnv: tc.webEnv})
			var gate, reached, pidFile string
			if tc.gate {
				dir := t.TempDir()
				gate, reached, pidFile = filepath.Join(dir, "open"), filepath.Join(dir, "reached"), filepath.Join(dir, "pid")
				blocking := fmt.Sprintf("reload: echo $$ > %s; touch %s; while [ ! -e %s ]; do sleep 0.02; done; ", pidFile, reached, gate)
				v2 = strings.Replace(v2, "reload: ", blocking, 1)
			}
			w.commitYAML(v2, "v2")

			// A change to the nginx file needs a reload, and an nginx
			// reload closes idle keep-alive connections: a client that
			// never retries (POST) can lose a request there, crash or no
			// crash (see TestLoadSeesReloadErrors in reconciler/nginx).
			// Those cases hold a client that retries idempotent requests
			// on a closed keep-alive connection, as HTTP clients do, to 0
			// failures, and report the strict client's count.
			l := startLoad(t, w.port, 6)
			var strict *load
			if tc.webExtra != "" {
				strict, l = l, startLoadMethod(t, w.port, 6, http.MethodGet)
			}
			waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 50 })

			c := w.startApply()
			if tc.gate {
				waitFor(t, "the reload command to start", 30*time.Second, func() bool {
					_, err := os.Stat(reached)
					return err == nil
				})
				c.kill(t)
				// The reload command runs in its own process group; it dies
				// with the reconciler in a real crash (same cgroup/unit), so
				// kill it too, before it can reload.
				b, err := os.ReadFile(pidFile)
				pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
				if err != nil || perr != nil {
					t.Fatalf("reload command pid: %v %v", err, perr)
				}
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				if n := w.reloadCount(); n != reloads {
					t.Fatalf("nginx was reloaded before the kill (%d → %d)", reloads, n)
				}
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				c.killAt(t, tc.name, tc.at(w.env))
			}
			// Serving continues after the crash, on either version.
			before := l.ok.Load()
			waitFor(t, "requests after the crash", 5*time.Second, func() bool { return l.ok.Load() > before+50 })

			r := w.mustRun(exitOK, "apply")
			t.Logf("recovery plan:\n%s", r.stdout)
			w.wantServing("v2") // apply returns once nginx serves its files
			before = l.ok.Load()
			waitFor(t, "requests after the recovery", 5*time.Second, func() bool { return l.ok.Load() > before+50 })
			l.end()
			if strict != nil {
				strict.end()
				t.Logf("non-retrying POST client across the reload: %d requests, %d failed %v", strict.ok.Load(), strict.failed.Load(), strict.errs)
			}
			w.wantConverged("web", "worker")
			if tc.gate && w.reloadCount() == reloads {
				t.Fatalf("the nginx file written before the crash was never loaded: no reload since")
			}
			t.Logf("%d requests, %d failed, versions %v", l.ok.Load(), l.failed.Load(), l.versions)
			if l.failed.Load() != 0 {
				t.Fatalf("%d failed requests, e.g. %v", l.failed.Load(), l.errs)
			}
		})
	}
}
