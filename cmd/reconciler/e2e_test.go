package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

// world is one test's host: a private nginx, a state dir, a git repo and a
// unique env name, all removed when the test ends.
type world struct {
	t        *testing.T
	env      string
	cli      *client.Client
	ngx      *testenv.Nginx
	repo     *testenv.Repo
	stateDir string
	port     int    // nginx listen port of service web
	reloads  string // file that counts nginx reloads
}

func newWorld(t *testing.T) *world {
	t.Helper()
	cli := testenv.Docker(t)
	testenv.AppImageVariant(t, "reconciler-test/app:v1", "v1")
	testenv.AppImageVariant(t, "reconciler-test/app:v2", "v2")
	w := &world{t: t, env: testenv.UniqueEnv(t), cli: cli, ngx: testenv.StartNginx(t), repo: testenv.NewRepo(t),
		stateDir: t.TempDir(), port: testenv.FreePort(t)}
	w.reloads = filepath.Join(w.ngx.Dir, "reloads")
	testenv.RemoveEnvContainers(t, cli, w.env)
	return w
}

// spec is what a test varies in the env file.
type spec struct {
	image, version, config string
	webEnv                 string // extra YAML lines under web.env
	listenExtra, tls       string
	worker                 bool
	migrations             string // YAML of the migrations block's fields, indented 2
	webExtra               string // YAML lines under services.web, indented 4
	workerEnv              string // YAML lines under services.worker.env, indented 6
	top                    string // top-level YAML appended to the file
	drain                  string // web's drain; default 500ms
}

func (w *world) envYAML(s spec) string {
	if s.image == "" {
		s.image = "reconciler-test/app:v1"
	}
	if s.drain == "" {
		s.drain = "500ms"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `environment: %s
nginx:
  confDir: %s
  test: %s
  reload: echo reload >> %s && %s
  logDir: %s
services:
  web:
    image: %s
    containerPort: 8080
    listen: "127.0.0.1:%d%s"
%s    env:
      VERSION: %s
%s    files:
      - source: config/web.yaml
        target: /app/config.yaml
    memory: 64m
    health:
      path: /health
      interval: 100ms
      timeout: 1s
      healthyThreshold: 2
      unhealthyThreshold: 3
      startTimeout: 8s
    drain: %s
%s`, w.env, w.ngx.ConfDir, w.ngx.Test, w.reloads, w.ngx.Reload, w.ngx.Dir, s.image, w.port, s.listenExtra, s.tls, s.version, s.webEnv, s.drain, s.webExtra)
	if s.worker {
		fmt.Fprintf(&b, `  worker:
    image: reconciler-test/app:v1
    command: ["worker"]
    health:
      interval: 100ms
      startTimeout: 8s
`)
		if s.workerEnv != "" {
			b.WriteString("    env:\n" + s.workerEnv)
		}
	}
	if s.migrations != "" {
		b.WriteString("migrations:\n" + s.migrations)
	}
	b.WriteString(s.top)
	w.repo.Write("config/web.yaml", s.config)
	return b.String()
}

// commit writes the env file for s and commits it.
func (w *world) commit(s spec, msg string) string {
	w.t.Helper()
	w.repo.Write("envs/"+w.env+".yaml", w.envYAML(s))
	return w.repo.Commit(msg)
}

type result struct {
	code           int
	stdout, stderr string
}

// cli runs reconciler in-process with the world's repo and state dir.
func (w *world) run(args ...string) result {
	w.t.Helper()
	var out, errb bytes.Buffer
	full := append(args, "--env", w.env, "--repo", w.repo.Dir, "--state-dir", w.stateDir)
	code := run(context.Background(), full, &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (w *world) mustRun(want int, args ...string) result {
	w.t.Helper()
	r := w.run(args...)
	if r.code != want {
		w.t.Fatalf("reconciler %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// get fetches path through nginx.
func (w *world) get(path string) (int, string) {
	w.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", w.port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (w *world) wantServing(version string) {
	w.t.Helper()
	code, body := w.get("/")
	if code != 200 || !strings.Contains(body, "version="+version+" ") {
		w.t.Fatalf("GET / through nginx = %d %q, want version=%s", code, body, version)
	}
}

// containers returns name → id of the env's containers.
func (w *world) containers() map[string]string {
	w.t.Helper()
	list, err := w.cli.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", state.LabelEnv+"="+w.env))})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list {
		out[strings.TrimPrefix(c.Names[0], "/")] = c.ID
	}
	return out
}

// state is the engine's state of the container name ("" when absent).
func (w *world) state(name string) string {
	w.t.Helper()
	ci, err := w.cli.ContainerInspect(context.Background(), name)
	if err != nil || ci.State == nil {
		return ""
	}
	return ci.State.Status
}

func (w *world) reloadCount() int {
	b, _ := os.ReadFile(w.reloads)
	return strings.Count(string(b), "reload")
}

// load sends requests through nginx from keep-alive connections until
// stop is closed. It never retries: POST is not replayed by net/http.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	versions   map[string]int
	errs       []string
	stop       chan struct{}
	done       sync.WaitGroup
}

func startLoad(t *testing.T, port, conns int) *load {
	return startLoadMethod(t, port, conns, http.MethodPost)
}

// startLoadMethod is startLoad with another method: with GET, net/http
// retries a request once when a reused keep-alive connection was closed
// under it, as HTTP clients commonly do for idempotent requests.
func startLoadMethod(t *testing.T, port, conns int, method string) *load {
	l := &load{versions: map[string]int{}, stop: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(60 * time.Second) // bounded even if stop is never closed
	for i := 0; i < conns; i++ {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				req, err := http.NewRequest(method, url, nil)
				if err != nil {
					l.fail(err.Error())
					return
				}
				resp, err := c.Do(req)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("status %d: %s", resp.StatusCode, b))
					continue
				}
				l.ok.Add(1)
				v, _, _ := strings.Cut(strings.TrimPrefix(string(b), "version="), " ")
				l.mu.Lock()
				l.versions[v]++
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, msg)
	}
	l.mu.Unlock()
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLifecycle: first deploy, no-op re-apply, upgrade under keep-alive
// load with zero failed requests, rollback by git revert, status.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "greeting: hello\n", worker: true}, "deploy v1")

	r := w.mustRun(exitChanges, "diff")
	for _, want := range []string{"+ web: create blue", "+ worker: create blue", "new service"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	w.mustRun(exitOK, "apply")
	w.mustRun(exitOK, "diff")
	w.wantServing("v1")
	if code, body := w.get("/file?path=/app/config.yaml"); code != 200 || body != "greeting: hello\n" {
		t.Fatalf("config file in container = %d %q", code, body)
	}

	// A second apply with nothing changed: no Docker writes, no reload.
	ids, reloads := w.containers(), w.reloadCount()
	r = w.mustRun(exitOK, "apply")
	if !strings.Contains(r.stdout, "in sync, nothing to do") {
		t.Fatalf("no-op apply output:\n%s", r.stdout)
	}
	if after := w.containers(); fmt.Sprint(after) != fmt.Sprint(ids) {
		t.Fatalf("no-op apply changed containers: %v → %v", ids, after)
	}
	if n := w.reloadCount(); n != reloads {
		t.Fatalf("no-op apply reloaded nginx (%d → %d)", reloads, n)
	}

	// Upgrade v1 → v2 under load: no failed request.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "greeting: hello\n", worker: true}, "deploy v2")
	l := startLoad(t, w.port, 16)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 100 })
	r = w.mustRun(exitOK, "apply")
	before := l.ok.Load()
	waitFor(t, "load after the switch", 5*time.Second, func() bool { return l.ok.Load() > before+200 })
	l.end()
	t.Logf("zero-downtime upgrade: %d requests, %d failed, versions %v", l.ok.Load(), l.failed.Load(), l.versions)
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests during the upgrade, e.g. %v", l.failed.Load(), l.errs)
	}
	if l.versions["v1"] == 0 || l.versions["v2"] == 0 {
		t.Fatalf("load did not span the switch: %v", l.versions)
	}
	if !strings.Contains(r.stdout, "~ web: replace blue → green") || strings.Contains(r.stdout, "worker: replace") {
		t.Fatalf("upgrade plan:\n%s", r.stdout)
	}
	w.wantServing("v2")
	names := w.containers()
	if _, ok := names[w.env+"-web-blue"]; !ok || len(names) != 3 {
		t.Fatalf("after upgrade containers = %v, want web-green, worker-blue and web-blue (stopped, kept for a rollback)", names)
	}
	if st := w.state(w.env + "-web-blue"); st != "exited" {
		t.Fatalf("web-blue after the upgrade is %s, want exited (kept for a rollback)", st)
	}
	if n := w.reloadCount(); n != reloads {
		t.Fatalf("the upgrade reloaded nginx (%d → %d): the switch must not reload", reloads, n)
	}

	// Rollback: git revert, apply.
	w.repo.Git("revert", "--no-edit", "HEAD")
	w.mustRun(exitOK, "apply")
	w.wantServing("v1")

	r = w.mustRun(exitOK, "status", "-o", "json")
	var st struct {
		Services []host.ServiceStatus `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	if len(st.Services) != 2 || st.Services[0].Service != "web" || st.Services[0].Color != "blue" ||
		st.Services[0].Health != "healthy" || st.Services[0].RunningImage != "reconciler-test/app:v1" ||
		st.Services[0].Commit != w.repo.Git("rev-parse", "HEAD") {
		t.Fatalf("status = %+v", st.Services)
	}
	w.mustRun(exitOK, "status")

	// Outside the repo, status still shows what runs.
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"status", "--env", w.env, "--repo", t.TempDir(), "--state-dir", w.stateDir}, &out, &errb); code != exitOK ||
		!strings.Contains(out.String(), "web") || !strings.Contains(errb.String(), "desired state unavailable") {
		t.Fatalf("status without a repo: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}

// TestFailedHealthCheck: the new color never gets healthy; the old keeps
// serving, the new is removed, and its last log lines are in the output.
func TestFailedHealthCheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	before := w.containers()

	w.commit(spec{version: "v2", config: "a: 1\n", webEnv: "      HEALTH: fail\n"}, "v2 broken")
	r := w.mustRun(exitFailed, "apply")
	for _, want := range []string{"not healthy", "last log lines of " + w.env + "-web-green", "listening on", "rolled back", "traffic is on the version that served before"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("apply output lacks %q:\n%s", want, r.stderr)
		}
	}
	w.wantServing("v1")
	if after := w.containers(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("containers after failed deploy %v, want %v", after, before)
	}
	w.mustRun(exitChanges, "diff") // still wants v2
}

// TestDriftHealed: containers removed, stopped or changed by hand, an nginx
// file edited and a marker deleted are shown by diff and repaired by apply.
func TestDriftHealed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true}, "v1")
	w.mustRun(exitOK, "apply")
	ctx := context.Background()
	web, worker := w.env+"-web-blue", w.env+"-worker-blue"

	heal := func(what, want string) {
		t.Helper()
		r := w.mustRun(exitChanges, "diff")
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("%s: diff lacks %q:\n%s", what, want, r.stdout)
		}
		w.mustRun(exitOK, "apply")
		w.mustRun(exitOK, "diff")
		w.wantServing("v1")
	}

	if err := w.cli.ContainerStop(ctx, worker, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	heal("stopped", "is exited (stopped by hand?)")

	if err := w.cli.ContainerRemove(ctx, web, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	heal("removed", "drift: no container (removed by hand?)")

	var webName string
	for n := range w.containers() {
		if strings.Contains(n, "-web-") {
			webName = n
		}
	}
	if _, err := w.cli.ContainerUpdate(ctx, webName, container.UpdateConfig{Resources: container.Resources{Memory: 96 << 20, MemorySwap: 96 << 20}}); err != nil {
		t.Fatal(err)
	}
	heal("memory", "memory limit is 96m on the host, 64m when created")

	conf := filepath.Join(w.ngx.ConfDir, state.SiteFile(w.env, "web"))
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, append(b, "# edited by hand\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	heal("nginx edited", "nginx file differs")
	if after, _ := os.ReadFile(conf); !bytes.Equal(after, b) {
		t.Fatalf("nginx file not restored")
	}

	// Flip the marker by hand so nginx sends traffic to the color that has
	// no container.
	var live state.Color
	for n := range w.containers() {
		if strings.Contains(n, "-web-") && w.state(n) == "running" { // the other is the kept previous release
			live = state.Color(n[strings.LastIndex(n, "-")+1:])
		}
	}
	marker := filepath.Join(w.ngx.ConfDir, state.MarkerFile(w.env, "web"))
	if live == state.Green {
		os.Remove(marker)
	} else if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	heal("marker", "drift: nginx sends traffic to "+string(live.Other())+", live container is "+string(live))
}

// TestChangesAndPrune: a config-file change redeploys; a removed service is
// pruned with its nginx file; a container without our labels is untouched.
func TestChangesAndPrune(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	foreign := w.env + "-web-green-foreign"
	cfg := &container.Config{Image: "reconciler-test/app:v1", Cmd: []string{"worker"}, Labels: map[string]string{"other": "yes"}}
	if _, err := w.cli.ContainerCreate(ctx, cfg, nil, nil, nil, foreign); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cli.ContainerRemove(context.Background(), foreign, container.RemoveOptions{Force: true}) })

	w.commit(spec{version: "v1", config: "a: 1\n", worker: true}, "v1")
	w.mustRun(exitOK, "apply")

	w.commit(spec{version: "v1", config: "a: 2\n", worker: true}, "config change")
	r := w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "file /app/config.yaml changed") || strings.Contains(r.stdout, "worker:") {
		t.Fatalf("diff after a config change:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	if code, body := w.get("/file?path=/app/config.yaml"); code != 200 || body != "a: 2\n" {
		t.Fatalf("config after redeploy = %d %q", code, body)
	}

	// Remove web from the file: its container and nginx file go.
	w.repo.Write("envs/"+w.env+".yaml", strings.Replace(w.envYAML(spec{version: "v1", config: "a: 2\n", worker: true}),
		"  web:", "  old-web:", 1))
	w.repo.Commit("rename web")
	w.mustRun(exitOK, "apply")
	names := w.containers()
	for n := range names {
		if strings.Contains(n, "-web-") && !strings.Contains(n, "old-web") {
			t.Fatalf("pruned service web still has %s", n)
		}
	}
	if _, err := os.Stat(filepath.Join(w.ngx.ConfDir, state.SiteFile(w.env, "web"))); !os.IsNotExist(err) {
		t.Fatalf("nginx file of the pruned service: %v", err)
	}
	// Its name goes too: proxy and marker; old-web's take their place.
	if _, err := w.cli.ContainerInspect(ctx, state.NameProxyName(w.env, "web")); err == nil {
		t.Fatalf("name proxy of the pruned service web still exists")
	}
	if _, err := os.Stat(filepath.Join(w.stateDir, "names", w.env, "web")); !os.IsNotExist(err) {
		t.Fatalf("name marker of the pruned service web: %v", err)
	}
	if ci, err := w.cli.ContainerInspect(ctx, state.NameProxyName(w.env, "old-web")); err != nil || !ci.State.Running {
		t.Fatalf("name proxy of old-web: %v", err)
	}
	if _, err := w.cli.ContainerInspect(ctx, foreign); err != nil {
		t.Fatalf("foreign container touched: %v", err)
	}
}

// TestNginxTestFailureRestores: a change whose nginx file fails `nginx -t`
// restores the previous file, removes the new color and keeps serving.
func TestNginxTestFailureRestores(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	conf := filepath.Join(w.ngx.ConfDir, state.SiteFile(w.env, "web"))
	before, _ := os.ReadFile(conf)
	ids := w.containers()

	w.commit(spec{version: "v2", config: "a: 1\n", listenExtra: " ssl",
		tls: "    tls:\n      certificate: /nonexistent/cert.pem\n      key: /nonexistent/key.pem\n"}, "tls with missing cert")
	r := w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "nonexistent/cert.pem") {
		t.Fatalf("error lacks nginx's message:\n%s", r.stderr)
	}
	after, _ := os.ReadFile(conf)
	if !bytes.Equal(before, after) {
		t.Fatalf("nginx file not restored:\n%s", after)
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("containers %v, want %v", got, ids)
	}
	w.wantServing("v1")
}

// TestBadInputChangesNothing: invalid env files fail validate and apply
// with file, line and field, and leave the host as it was.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	ids, reloads := w.containers(), w.reloadCount()
	good := w.envYAML(spec{version: "v1", config: "a: 1\n"})
	cases := []struct{ from, to, want string }{
		{"containerPort: 8080", "containerPort: eighty", "services.web.containerPort"},
		{"image: reconciler-test/app:v1", "image: Bad Image!", "services.web.image"},
		{"interval: 100ms", "interval: soon", "services.web.health.interval"},
		{"source: config/web.yaml", "source: config/missing.yaml", "not found at this commit"},
		{"memory: 64m", "memory: lots", "services.web.memory"},
		{"environment: " + w.env, "environment: other", "environment"},
	}
	for _, tc := range cases {
		w.repo.Write("envs/"+w.env+".yaml", strings.Replace(good, tc.from, tc.to, 1))
		w.repo.Commit("bad: " + tc.to)
		r := w.mustRun(exitFailed, "validate")
		if !strings.Contains(r.stderr, "envs/"+w.env+".yaml:") || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("validate %q: stderr lacks file:line and %q:\n%s", tc.to, tc.want, r.stderr)
		}
		w.mustRun(exitFailed, "apply")
		w.mustRun(exitFailed, "diff")
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || w.reloadCount() != reloads {
		t.Fatalf("bad input changed the host: %v → %v, reloads %d → %d", ids, got, reloads, w.reloadCount())
	}
	w.wantServing("v1")
}

// TestConcurrentApplies: two applies at once are serialized by the lock;
// a short --lock-timeout fails naming the holder.
func TestConcurrentApplies(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = w.run("apply")
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != exitOK {
			t.Fatalf("apply %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	// Exactly one of them deployed; the other found the host in sync.
	if n := strings.Count(res[0].stdout+res[1].stdout, "in sync, nothing to do"); n != 1 {
		t.Fatalf("want one apply to deploy and one to find nothing to do:\n%s\n---\n%s", res[0].stdout, res[1].stdout)
	}
	w.wantServing("v1")

	// Hold the lock from a slow apply (a long drain) and time out on it.
	w.commit(spec{version: "v2", config: "a: 1\n"}, "v2")
	done := make(chan result)
	go func() { done <- w.run("apply") }()
	waitFor(t, "the first apply to take the lock", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(w.stateDir, w.env+".lock"))
		return len(b) > 0
	})
	r := w.run("apply", "--lock-timeout", "1ms")
	<-done
	if r.code != exitFailed || !strings.Contains(r.stderr, "lock held by another process") || !strings.Contains(r.stderr, "reconciler apply --env "+w.env) {
		t.Fatalf("second apply: exit %d\n%s", r.code, r.stderr)
	}
}

// TestImages: a pull that fails stops the deploy before anything changes;
// a tag moved to another image is a change that apply rolls out.
func TestImages(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	tag := "reconciler-test/app:" + w.env // this test's own tag, moved below
	if err := w.cli.ImageTag(ctx, "reconciler-test/app:v1", tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cli.ImageRemove(context.Background(), tag, image.RemoveOptions{}) })
	w.commit(spec{image: tag, version: "v1", config: "a: 1\n"}, "v1")
	first := w.mustRun(exitOK, "apply", "--log-format", "json")
	// apply returns once nginx serves the new file: no waiting here.
	w.wantServing("v1")
	jsonLines := 0
	for _, line := range strings.Split(strings.TrimSpace(first.stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("--log-format json wrote a non-JSON line %q", line)
		}
		jsonLines++
	}
	if jsonLines < 3 {
		t.Fatalf("--log-format json: %d log lines from a first deploy, want its steps", jsonLines)
	}
	ids, reloads := w.containers(), w.reloadCount()

	// An image that cannot be pulled: exit 1, nothing changed.
	w.commit(spec{image: "127.0.0.1:1/nope/app:v9", version: "v9", config: "a: 1\n"}, "unpullable")
	r := w.mustRun(exitFailed, "apply", "--log-format", "json")
	if !strings.Contains(r.stderr, "127.0.0.1:1/nope/app:v9") {
		t.Fatalf("pull error does not name the image:\n%s", r.stderr)
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || w.reloadCount() != reloads {
		t.Fatalf("failed pull changed the host: %v → %v", ids, got)
	}
	w.wantServing("v1")

	// Move the tag to another image: diff shows it, apply deploys it.
	w.repo.Git("revert", "--no-edit", "HEAD")
	if err := w.cli.ImageTag(ctx, "reconciler-test/app:v2", tag); err != nil {
		t.Fatal(err)
	}
	r = w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "image "+tag+" now points to") {
		t.Fatalf("diff after moving the tag:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	w.mustRun(exitOK, "diff")
	if code, body := w.get("/file?path=/variant"); code != 200 || strings.TrimSpace(body) != "v2" {
		t.Fatalf("after moving the tag the container runs variant %d %q, want v2", code, body)
	}
}

// TestMigrations: the job runs before any service changes, its output is
// streamed, and it runs again only when its spec changes.
func TestMigrations(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	mig := "  image: reconciler-test/app:v1\n  command: [\"migrate\"]\n"
	w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig}, "v1 with migrations")
	r := w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "> migrations: run reconciler-test/app:v1") || !strings.Contains(r.stdout, "never ran on this host") {
		t.Fatalf("diff:\n%s", r.stdout)
	}
	r = w.mustRun(exitOK, "apply")
	mi, wi := strings.Index(r.stdout, "migrating"), strings.Index(r.stderr, "start web/blue")
	if mi < 0 || wi < 0 {
		t.Fatalf("apply output lacks the job's output or the service start:\n%s\n%s", r.stdout, r.stderr)
	}
	w.wantServing("v1")
	// Same spec: in sync, the job does not run again.
	w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig}, "no change")
	w.mustRun(exitOK, "diff")
	// A new migrations image runs the job again, before the web upgrade.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n",
		migrations: "  image: reconciler-test/app:v2\n  command: [\"migrate\"]\n"}, "v2")
	r = w.mustRun(exitChanges, "diff")
	if mi, wi := strings.Index(r.stdout, "> migrations"), strings.Index(r.stdout, "~ web"); mi < 0 || wi < mi {
		t.Fatalf("migrations must come before the service change:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	w.wantServing("v2")
	if names := w.containers(); len(names) != 2 {
		t.Fatalf("the job container was left behind (want web-green and the stopped web-blue): %v", names)
	}
}
