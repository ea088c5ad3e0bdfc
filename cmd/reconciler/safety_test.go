package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// trigger files the demo app watches: while one exists in the container,
// /health answers 503 or / answers 500.
const triggers = "      UNHEALTHY_FILE: /app/unhealthy\n      ERROR_FILE: /app/error\n"

// touch creates /app/file inside a running container.
func (w *world) touch(name, file string) {
	w.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	if err := w.cli.CopyToContainer(context.Background(), name, "/app", &buf, container.CopyToContainerOptions{}); err != nil {
		w.t.Fatalf("touch /app/%s in %s: %v", file, name, err)
	}
}

func (w *world) exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// applyAsync runs apply in the background.
func (w *world) applyAsync() <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- w.run("apply") }()
	return ch
}

// receiver is a notification endpoint on loopback.
type receiver struct {
	mu     sync.Mutex
	events []reconciler.Event
	raw    []string // the bodies as received
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		var e reconciler.Event
		b, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(b, &e); err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, e)
		r.raw = append(r.raw, string(b))
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, string(e.Name))
	}
	return out
}

func (r *receiver) event(name string) (reconciler.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if string(e.Name) == name {
			return e, true
		}
	}
	return reconciler.Event{}, false
}

// TestBakeSwitchesBack: a new color that passes its health checks and turns
// unhealthy during the bake gets its traffic switched back to the old
// color, which kept running; a keep-alive client sees no failed request;
// the receiver hears of the rollback with the images.
func TestBakeSwitchesBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	notify := fmt.Sprintf("notify:\n  - url: %s/hook\n", rcv.srv.URL)
	// The bake is configured from v1 on, as in prod: the nginx file does
	// not change with v2, so nothing reloads nginx during the deploy.
	bake := "    deploy:\n      bake: 12s\n"
	w.commit(spec{version: "v1", config: "a: 1\n", webEnv: triggers, top: notify, webExtra: bake}, "v1")
	w.mustRun(exitOK, "apply")
	waitFor(t, "deploy.succeeded", 5*time.Second, func() bool { _, ok := rcv.event("deploy.succeeded"); return ok })
	reloads := w.reloadCount()

	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webEnv: triggers, top: notify,
		webExtra: bake}, "v2 that goes bad")
	l := startLoad(t, w.port, 16)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 100 })
	done := w.applyAsync()
	marker := filepath.Join(w.ngx.ConfDir, state.MarkerFile(w.env, "web"))
	waitFor(t, "the switch to green", 15*time.Second, func() bool { return w.exists(marker) })
	waitFor(t, "v2 to serve", 5*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.versions["v2"] > 50 })
	turned := time.Now()
	w.touch(w.env+"-web-green", "unhealthy")
	r := <-done
	back := time.Since(turned)
	before := l.ok.Load()
	waitFor(t, "load after the switch back", 5*time.Second, func() bool { return l.ok.Load() > before+200 })
	l.end()
	t.Logf("bake: switched back %s after v2 turned unhealthy; %d requests, %d failed, versions %v", back, l.ok.Load(), l.failed.Load(), l.versions)

	if r.code != exitFailed || !strings.Contains(r.stderr, "rolled back") || !strings.Contains(r.stderr, "while it had traffic") {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	if back > 10*time.Second {
		t.Fatalf("switched back after %s: not within the bake", back)
	}
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests around the switch back, e.g. %v", l.failed.Load(), l.errs)
	}
	if n := w.reloadCount(); n != reloads {
		t.Fatalf("nginx reloaded during the deploy and its rollback (%d → %d)", reloads, n)
	}
	w.wantServing("v1")
	if names := w.containers(); len(names) != 1 {
		t.Fatalf("containers after the rollback: %v, want only web-blue", names)
	}
	if w.exists(marker) {
		t.Fatalf("marker still points at green")
	}
	waitFor(t, "deploy.failed", 5*time.Second, func() bool { _, ok := rcv.event("deploy.failed"); return ok })
	e, ok := rcv.event("deploy.rolled_back")
	if !ok {
		t.Fatalf("no deploy.rolled_back among %v", rcv.names())
	}
	if e.Env != w.env || e.Commit != w.repo.Git("rev-parse", "HEAD") || e.Author != "Test <test@example.com>" ||
		len(e.Services) != 1 || e.Services[0].OldImage != "reconciler-test/app:v1" || e.Services[0].NewImage != "reconciler-test/app:v2" ||
		!strings.Contains(e.Error, "rolled back") {
		t.Fatalf("deploy.rolled_back payload = %+v", e)
	}
}

// TestBakeErrorRate: a new color whose answers turn into 5xx above
// maxErrorRate during the bake is rolled back.
func TestBakeErrorRate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", webEnv: triggers}, "v1")
	w.mustRun(exitOK, "apply")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webEnv: triggers,
		webExtra: "    deploy:\n      bake: 30s\n      maxErrorRate: 10%\n"}, "v2 that errs")
	l := startLoad(t, w.port, 8)
	done := w.applyAsync()
	marker := filepath.Join(w.ngx.ConfDir, state.MarkerFile(w.env, "web"))
	waitFor(t, "the switch to green", 15*time.Second, func() bool { return w.exists(marker) })
	w.touch(w.env+"-web-green", "error")
	r := <-done
	l.end()
	if r.code != exitFailed || !strings.Contains(r.stderr, "above maxErrorRate 10.0%") || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	w.wantServing("v1")
}

// canaryShare sends n requests through nginx and returns the share that
// version answered, in percent.
func (w *world) share(version string, n int) float64 {
	w.t.Helper()
	hits := 0
	for i := 0; i < n; i++ {
		if _, body := w.get("/"); strings.Contains(body, "version="+version+" ") {
			hits++
		}
	}
	return 100 * float64(hits) / float64(n)
}

// TestCanary: a canary walks its steps to 100% and smoke-tests the result;
// a canary that turns unhealthy at 50% is aborted and sends 0% to the new
// color.
func TestCanary(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", webEnv: triggers}, "v1")
	w.mustRun(exitOK, "apply")

	canary := func(pause string) string {
		return "    deploy:\n      strategy: canary\n      steps: [10, 50, 100]\n      stepPause: " + pause + "\n" +
			"    smoke:\n      - path: /health\n        status: 200\n"
	}
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webEnv: triggers, webExtra: canary("1s")}, "v2 canary")
	r := w.mustRun(exitOK, "apply")
	for _, want := range []string{"shift web 10% → green", "shift web 50% → green", "switch web → green", "smoke web/green http://127.0.0.1:"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("canary plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := w.share("v2", 100); got != 100 {
		t.Fatalf("after the canary v2 serves %.0f%%", got)
	}

	// v3 (on blue) turns unhealthy at 50%: abort, 0% to blue.
	w.commit(spec{image: "reconciler-test/app:v1", version: "v3", config: "a: 1\n", webEnv: triggers, webExtra: canary("30s")}, "v3 canary")
	done := w.applyAsync()
	fifty := filepath.Join(w.ngx.ConfDir, state.CanaryMarkerFile(w.env, "web", 50, state.Blue))
	waitFor(t, "the 50% step", 60*time.Second, func() bool { return w.exists(fifty) })
	if got := w.share("v3", 400); got < 35 || got > 65 {
		t.Fatalf("at the 50%% step v3 got %.1f%% of 400 requests", got)
	}
	w.touch(w.env+"-web-blue", "unhealthy")
	r = <-done
	if r.code != exitFailed || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("aborted canary: exit %d\n%s", r.code, r.stderr)
	}
	if got := w.share("v3", 200); got != 0 {
		t.Fatalf("after the abort v3 still gets %.1f%%", got)
	}
	if m, _ := filepath.Glob(filepath.Join(w.ngx.ConfDir, state.CanaryMarkerGlob(w.env, "web"))); len(m) != 0 {
		t.Fatalf("canary markers left: %v", m)
	}
}

// TestCrashLoopingWorkerFails: a worker that keeps crashing fails its deploy
// and the old one keeps running.
func TestCrashLoopingWorkerFails(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true}, "v1")
	w.mustRun(exitOK, "apply")
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true, workerEnv: "      CRASH_AFTER: 10ms\n"}, "crashing worker")
	r := w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "restart") || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("apply:\n%s", r.stderr)
	}
	names := w.containers()
	if _, ok := names[w.env+"-worker-blue"]; !ok || len(names) != 2 {
		t.Fatalf("containers %v, want web-blue and the old worker-blue", names)
	}
}

// TestSmokeFailureRollsBack: a smoke request that gets the wrong status
// after the switch rolls the service back.
func TestSmokeFailureRollsBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n",
		webExtra: "    smoke:\n      - path: /\n        status: 418\n"}, "v2 with a smoke test it fails")
	r := w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "status 200, want 418") || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("apply:\n%s", r.stderr)
	}
	w.wantServing("v1")
}

// TestNotifierDownDoesNotFail: a receiver that is down is logged and the
// deploy succeeds.
func TestNotifierDownDoesNotFail(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	w.commit(spec{version: "v1", config: "a: 1\n", top: "notify:\n  - url: http://" + closed + "/hook/SECRET-TOKEN\n    format: slack\n"}, "v1")
	r := w.mustRun(exitOK, "apply")
	if !strings.Contains(r.stderr, "notification failed; the deploy goes on") {
		t.Fatalf("no warning about the notifier:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "SECRET-TOKEN") {
		t.Fatalf("the receiver URL's path was printed:\n%s", r.stderr)
	}
	w.wantServing("v1")
}

// TestMigrationSafety: a failing migration changes no service; a migration
// that succeeds followed by a failed health check runs the rollback
// command, and the next apply runs the migrations again.
func TestMigrationSafety(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	notify := fmt.Sprintf("notify:\n  - url: %s/hook\n    events: [migration.failed]\n", rcv.srv.URL)
	w.commit(spec{version: "v1", config: "a: 1\n", top: notify}, "v1")
	w.mustRun(exitOK, "apply")
	ids := w.containers()

	mig := func(exit string) string {
		return "  image: reconciler-test/app:v1\n  command: [\"migrate\", \"up\"]\n  env:\n    MIGRATE_EXIT: \"" + exit + "\"\n" +
			"  timeout: 1m\n  rollback:\n    command: [\"migrate\", \"down\"]\n"
	}
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", top: notify, migrations: mig("3")}, "v2, migration fails")
	r := w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "migrations exited with code 3; no service was changed") {
		t.Fatalf("failed migration:\n%s", r.stderr)
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("a failed migration changed containers: %v → %v", ids, got)
	}
	w.wantServing("v1")
	waitFor(t, "migration.failed", 5*time.Second, func() bool { _, ok := rcv.event("migration.failed"); return ok })
	if n := rcv.names(); len(n) != 1 {
		t.Fatalf("events %v, want only migration.failed (the receiver filters)", n)
	}

	// The migration succeeds, then v2 never gets healthy: rollback runs.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", top: notify, migrations: mig("0"),
		webEnv: "      HEALTH: fail\n"}, "v2, migration ok, service broken")
	r = w.mustRun(exitFailed, "apply")
	up, down := strings.Index(r.stdout, "migrating up"), strings.Index(r.stdout, "migrating down")
	if up < 0 || down < up || !strings.Contains(r.stderr, "the migrations of this deploy were rolled back") {
		t.Fatalf("want the migration, then its rollback:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	w.wantServing("v1")
	// The record was restored, so the migrations run again next time.
	r = w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "> migrations: run") {
		t.Fatalf("after a rollback the migrations must run again:\n%s", r.stdout)
	}
}

// TestBakeProgress: a non-interactive apply (here --log-format json, as in
// CI or the agent) logs a bake's progress every --progress-interval: the
// watch's time and what nginx's access log counted so far.
func TestBakeProgress(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", webEnv: triggers}, "v1")
	w.mustRun(exitOK, "apply")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webEnv: triggers,
		webExtra: "    deploy:\n      bake: 5s\n"}, "v2 with a bake")
	l := startLoad(t, w.port, 4)
	r := w.mustRun(exitOK, "apply", "--log-format", "json", "--progress-interval", "1s")
	l.end()
	var watch []map[string]any
	for _, line := range strings.Split(r.stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if msg, _ := m["msg"].(string); m["logger"] == "progress" && strings.HasPrefix(msg, "watch web/green ") {
			watch = append(watch, m)
		}
	}
	t.Logf("progress lines of the bake: %d", len(watch))
	if len(watch) < 3 || len(watch) > 6 {
		t.Fatalf("%d progress lines of a 5s bake at 1s intervals, want 3 to 6\n%s", len(watch), r.stderr)
	}
	last := watch[len(watch)-1]
	msg := last["msg"].(string)
	if !strings.Contains(msg, " / 5s · ") || !strings.Contains(msg, " req · ") || !strings.Contains(msg, " % 5xx") {
		t.Errorf("progress line %q lacks the time, the requests and the 5xx share", msg)
	}
	if n, _ := last["requests"].(float64); n <= 0 {
		t.Errorf("progress line counted %v requests under load: %v", last["requests"], last)
	}
}
