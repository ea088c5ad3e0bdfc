package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/state"
)

// The tests of issue 13: nginx runs as root with its workers as nobody
// (internal/testenv starts it as the test's user, root here, without a
// user directive), and the conf dir becomes mode 0700 between deploys, so
// the workers cannot see the markers that move traffic.

// hideConfDir makes the conf dir unsearchable for nginx's workers until
// the returned func (also run at cleanup) opens it again.
func (w *world) hideConfDir() func() {
	w.t.Helper()
	if os.Geteuid() != 0 {
		testenv.SkipOrFail(w.t, "needs root: nginx's workers must run as another user than the conf dir's owner")
	}
	if err := os.Chmod(w.ngx.ConfDir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	open := func() {
		if err := os.Chmod(w.ngx.ConfDir, 0o755); err != nil {
			w.t.Error(err)
		}
	}
	w.t.Cleanup(open)
	return open
}

// wantNamed fails unless out names the cause and the fix.
func (w *world) wantNamed(out string, extra ...string) {
	w.t.Helper()
	for _, want := range append([]string{"nginx's workers", "chmod 0755 " + w.ngx.ConfDir}, extra...) {
		if !strings.Contains(out, want) {
			w.t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}

// wantNoFailures ends l and fails on any failed request.
func wantNoFailures(t *testing.T, l *load) {
	t.Helper()
	l.end()
	t.Logf("%d requests, %d failed, versions %v", l.ok.Load(), l.failed.Load(), l.versions)
	if l.failed.Load() != 0 {
		t.Fatalf("%d failed requests, e.g. %v", l.failed.Load(), l.errs)
	}
}

// TestUnseenConfDirSwitch: with the conf dir hidden from nginx's workers,
// check fails and names the fix, apply's own checks stop it before any
// change, and apply without them fails at the switch, verified through
// nginx: rolled back, v1 served all along, green removed, blue kept.
// Opening the dir again and applying converges on v2.
func TestUnseenConfDirSwitch(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	w.wantServing("v1")
	open := w.hideConfDir()

	r := w.mustRun(exitFailed, "check")
	w.wantNamed(r.stdout, "FAIL nginx workers", state.ProbeFile(w.env, "web"))

	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	before := w.containers()
	l := startLoad(t, w.port, 16)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 100 })
	r = w.mustRun(exitFailed, "apply")
	w.wantNamed(r.stderr, "pre-deploy check nginx workers failed")
	if after := w.containers(); len(after) != len(before) {
		t.Fatalf("apply changed containers although its checks failed: %v → %v", before, after)
	}

	r = w.mustRun(exitFailed, "apply", "--skip-checks")
	w.wantNamed(r.stderr, "traffic did not move", filepath.Join(w.ngx.ConfDir, state.MarkerFile(w.env, "web")), "rolled back")
	n := l.ok.Load()
	waitFor(t, "load after the failed deploy", 5*time.Second, func() bool { return l.ok.Load() > n+200 })
	wantNoFailures(t, l)
	if l.versions["v2"] != 0 {
		t.Fatalf("v2 served requests although nginx never routed to it: %v", l.versions)
	}
	w.wantServing("v1")
	if names := w.containers(); len(names) != 1 || names[w.env+"-web-blue"] != before[w.env+"-web-blue"] {
		t.Fatalf("containers after the failed deploy: %v, want the same web-blue only (%v)", names, before)
	}

	open()
	w.mustRun(exitOK, "check")
	w.mustRun(exitOK, "apply")
	w.wantServing("v2")
}

// TestUnseenConfDirCanary: the same at a canary step: nginx does not
// follow the 50% marker, the deploy fails at the shift and rolls back.
func TestUnseenConfDirCanary(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	canary := "    deploy:\n      strategy: canary\n      steps: [50, 100]\n      stepPause: 1s\n"
	w.commit(spec{version: "v1", config: "a: 1\n", webExtra: canary}, "v1")
	w.mustRun(exitOK, "apply")
	open := w.hideConfDir()

	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webExtra: canary}, "v2 canary")
	l := startLoad(t, w.port, 16)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 100 })
	r := w.mustRun(exitFailed, "apply", "--skip-checks")
	w.wantNamed(r.stderr, "traffic did not move", filepath.Join(w.ngx.ConfDir, state.CanaryMarkerFile(w.env, "web", 50, state.Green)), "rolled back")
	wantNoFailures(t, l)
	w.wantServing("v1")
	if names := w.containers(); len(names) != 1 {
		t.Fatalf("containers after the failed canary: %v, want web-blue only", names)
	}

	open()
	w.mustRun(exitOK, "apply")
	if got := w.share("v2", 50); got != 100 {
		t.Fatalf("after the canary v2 serves %.0f%%", got)
	}
}

// TestUnseenConfDirBake: the conf dir is hidden during the bake, after the
// switch was verified. nginx then routes to blue again (still running: no
// request fails). A bake that fails switches back (to blue, which nginx
// confirms); a bake that passes reaches the drain, which asks nginx again
// and keeps blue. Opening the dir and applying converges.
func TestUnseenConfDirBake(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bake := "    deploy:\n      bake: 4s\n"
	w.commit(spec{version: "v1", config: "a: 1\n", webEnv: triggers, webExtra: bake}, "v1")
	w.mustRun(exitOK, "apply")
	marker := filepath.Join(w.ngx.ConfDir, state.MarkerFile(w.env, "web"))

	// The bake fails while nginx does not see the marker.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webEnv: triggers, webExtra: bake}, "v2 that goes bad")
	l := startLoad(t, w.port, 16)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 100 })
	done := w.applyAsync()
	waitFor(t, "the switch to green", 15*time.Second, func() bool { return w.exists(marker) })
	waitFor(t, "v2 to serve", 5*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.versions["v2"] > 50 })
	open := w.hideConfDir()
	w.touch(w.env+"-web-green", "unhealthy")
	r := <-done
	if r.code != exitFailed || !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	wantNoFailures(t, l)
	w.wantServing("v1")
	if names := w.containers(); len(names) != 1 {
		t.Fatalf("containers after the switch back: %v, want web-blue only", names)
	}

	// The bake passes while nginx does not see the marker: the drain
	// refuses.
	open()
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webEnv: triggers, webExtra: bake}, "v2 again")
	l = startLoad(t, w.port, 16)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 100 })
	done = w.applyAsync()
	waitFor(t, "the switch to green", 15*time.Second, func() bool { return w.exists(marker) })
	waitFor(t, "v2 to serve", 5*time.Second, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.versions["v2"] > 50 })
	open = w.hideConfDir()
	r = <-done
	if r.code != exitFailed {
		t.Fatalf("apply: exit %d, want 1\n%s", r.code, r.stderr)
	}
	w.wantNamed(r.stderr, "traffic did not move", "is not drained")
	wantNoFailures(t, l)
	w.wantServing("v1")
	if _, ok := w.containers()[w.env+"-web-blue"]; !ok {
		t.Fatal("blue was drained although nginx routes to it")
	}

	open()
	w.mustRun(exitOK, "apply")
	w.wantServing("v2")
	w.mustRun(exitOK, "diff")
}

// TestUnseenConfDirAgent: the conf dir is hidden after a deploy to green
// (by hand, say): nginx's workers fall back to blue, which is gone.
// status -o json shows where nginx routes next to the marker and flags
// the mismatch; the agent reports site.unhealthy and counts it.
func TestUnseenConfDirAgent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	notify := fmt.Sprintf("notify:\n  - url: %s/hook\n    events: [site.unhealthy]\n", rcv.srv.URL)
	w.commit(spec{version: "v1", config: "a: 1\n", top: notify}, "v1")
	w.mustRun(exitOK, "apply")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", top: notify}, "v2")
	w.mustRun(exitOK, "apply")
	w.wantServing("v2")

	r := w.mustRun(exitOK, "status", "-o", "json")
	var st struct {
		Services []host.ServiceStatus `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	if s := st.Services[0]; s.Routed != "green" || s.Marker != state.Green || s.RouteMismatch {
		t.Fatalf("status before: %+v, want routed and marker green", s)
	}

	w.hideConfDir()
	r = w.mustRun(exitOK, "status", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	if s := st.Services[0]; s.Routed != "blue" || s.Marker != state.Green || !s.RouteMismatch {
		t.Fatalf("status with the conf dir hidden: %+v, want routed blue, marker green, mismatch", s)
	}
	if r := w.mustRun(exitOK, "status"); !strings.Contains(r.stdout, "route web: nginx routes to blue, marker says green (MISMATCH") {
		t.Fatalf("status text lacks the mismatch:\n%s", r.stdout)
	}

	a := w.startAgent("file://"+w.repo.Bare(), "--interval", "1s", "--heal-interval", "1s")
	env := fmt.Sprintf("env=%q", w.env)
	waitFor(t, "site.unhealthy notified", 30*time.Second, func() bool { _, ok := rcv.event("site.unhealthy"); return ok })
	if e, _ := rcv.event("site.unhealthy"); len(e.Services) != 1 || e.Services[0].Name != "web" || !strings.Contains(e.Error, "nginx routes to blue, its marker says green") {
		t.Fatalf("site.unhealthy event = %+v", e)
	}
	waitFor(t, "the unhealthy site counted", 10*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_unhealthy_sites{`+env+`}`) == 1
	})
	if code := a.stop(); code != 0 {
		t.Fatalf("agent exit %d", code)
	}
}
