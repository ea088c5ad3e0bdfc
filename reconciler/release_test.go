package reconciler_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
)

// goldenCase is the named golden case of the planner.
func goldenCase(t *testing.T, name string) reconciler.GoldenCase {
	t.Helper()
	for _, gc := range reconciler.GoldenCases(t) {
		if gc.Name == name {
			return gc
		}
	}
	t.Fatalf("no golden case %s", name)
	return reconciler.GoldenCase{}
}

// TestAtomicReleaseSwitchesAllBack: in an atomic release of three
// services, a failure of one during the joint bake sends the traffic and
// the names of all three back to the old colors, removes the three new
// containers and keeps the old ones; the drains never ran.
func TestAtomicReleaseSwitchesAllBack(t *testing.T) {
	synctest.Test(t, testAtomicReleaseSwitchesAllBack)
}

func testAtomicReleaseSwitchesAllBack(t *testing.T) {
	d, p, h := bakeFails(t, nil)
	_, err := h.Applier(nil).Apply(context.Background(), p)
	if !errors.Is(err, reconciler.ErrRolledBack) {
		t.Fatalf("apply = %v, want a rolled-back error", err)
	}
	if !strings.Contains(err.Error(), "watch rest-api/green") {
		t.Errorf("error %q does not name the failed bake", err)
	}
	for _, svc := range []string{"mcp-server", "rest-api"} {
		if color, _ := h.Live(d.Nginx.ConfDir, d.Env, svc); color != state.Blue {
			t.Errorf("%s: traffic on %s, want blue", svc, color)
		}
		if got := h.Name(d.NamesDir, svc); got != state.Blue {
			t.Errorf("%s: name on %s, want blue", svc, got)
		}
	}
	for _, svc := range []string{"mcp-server", "rest-api", "worker"} {
		if _, ok := h.Container(state.ContainerName(d.Env, svc, state.Green)); ok {
			t.Errorf("%s: new container left behind", svc)
		}
		if _, ok := h.Container(state.ContainerName(d.Env, svc, state.Blue)); !ok {
			t.Errorf("%s: old container gone", svc)
		}
	}
	w, _ := h.Container(state.ContainerName(d.Env, "worker", state.Blue))
	if n := d.Network; !strings.Contains(strings.Join(w.Networks[n], ","), "worker") || len(w.Networks[n]) != 2 {
		t.Errorf("worker/blue aliases %q, want worker and worker-blue back", w.Networks[n])
	}
	for _, c := range h.Calls() {
		if c.Op == "remove" && strings.HasSuffix(c.Target, "-blue") {
			t.Errorf("old color removed: %v", c)
		}
	}
}

// TestAtomicReleaseSucceeds: all services move and bake together, and
// the old colors go at the end.
func TestAtomicReleaseSucceeds(t *testing.T) {
	gc := goldenCase(t, "atomic-upgrade")
	d, o := gc.Desired, gc.Observed
	p, err := reconciler.Diff(d, o, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	h := memhost.New()
	h.Seed(d, o)
	clock := memhost.NewClock(time.Unix(0, 0))
	if _, err := h.Applier(clock).Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"mcp-server", "rest-api"} {
		if color, _ := h.Live(d.Nginx.ConfDir, d.Env, svc); color != state.Green {
			t.Errorf("%s: traffic on %s, want green", svc, color)
		}
	}
	if c, ok := h.Container(state.ContainerName(d.Env, "rest-api", state.Blue)); !ok || c.State != "exited" {
		t.Error("old color of rest-api not stopped and kept after the drain")
	}
	// Both bakes ran to their end: the fake clock, which every
	// goroutine's sleep moves ahead, passed the longest. (How long
	// steps that run together take in real time is TestAtomicRelease's,
	// in cmd/reconciler.)
	if elapsed := clock.Now().Sub(time.Unix(0, 0)); elapsed < 5*time.Minute {
		t.Errorf("took %s, want at least 5m (the longest bake)", elapsed)
	}
}

// TestLatencyGate: a bake switches back once the upstream response time
// at the percentile is above maxLatency, judged after minRequests; fast
// traffic passes.
func TestLatencyGate(t *testing.T) {
	for _, tc := range []struct {
		name string
		slow time.Duration
		fail bool
	}{
		{"fast", 50 * time.Millisecond, false},
		{"slow", 400 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			w := watchStep(time.Minute)
			w.Watch.MaxLatency = 200 * time.Millisecond
			w.Watch.Percentile = 95
			w.Watch.MinRequests = 10
			r.clock.OnSleep = func(time.Time) { r.h.ServeTimed(w.Watch.LogPath, state.Green, 200, 5, tc.slow) }
			_, err := r.ap.Apply(context.Background(), movePlan(switchStep(), w))
			if !tc.fail {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			r.wantRolledBack(t, err)
			if !strings.Contains(err.Error(), "p95 of the upstream response time of 10 requests is 400ms, above maxLatency 200ms") {
				t.Errorf("error %q does not give the figures", err)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var times []time.Duration
	for i := 1; i <= 100; i++ {
		times = append(times, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{95, 95 * time.Millisecond}, {50, 50 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := reconciler.Percentile(times, tc.p); got != tc.want {
			t.Errorf("p%d = %s, want %s", tc.p, got, tc.want)
		}
	}
	if got := reconciler.Percentile(nil, 95); got != 0 {
		t.Errorf("p95 of nothing = %s, want 0", got)
	}
}

// TestAtomicReleaseRestoresUpstreamOnly: when a release is switched back
// after an upstream-only service's file was rewritten to its new color,
// the file comes back as it was, before the new color is removed.
func TestAtomicReleaseRestoresUpstreamOnly(t *testing.T) {
	d, o := reconciler.AtomicUpstreamOnly(t)
	p, err := reconciler.Diff(d, o, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	site := o.Sites[1]
	if site.Service != "rest-api" {
		t.Fatalf("site %s, want rest-api's", site.Service)
	}
	h := memhost.New()
	h.Seed(d, o)
	var mu sync.Mutex
	switched := false
	h.Fault = func(c memhost.Call) error {
		mu.Lock()
		defer mu.Unlock()
		if c.Op == "switch" && c.Arg == string(state.Green) {
			switched = true
		}
		if c.Op == "check" && c.Target == "21001" && switched { // mcp-server/green fails its bake
			return errors.New("connection refused")
		}
		return nil
	}
	_, err = h.Applier(memhost.NewClock(time.Unix(0, 0))).Apply(context.Background(), p)
	if !errors.Is(err, reconciler.ErrRolledBack) {
		t.Fatalf("apply = %v, want a rolled-back error", err)
	}
	if got, _ := h.File(site.Path); string(got) != string(site.Content) {
		t.Errorf("rest-api's upstream file after the switch-back:\n%s\nwant the one it had:\n%s", got, site.Content)
	}
	if _, ok := h.Container(state.ContainerName(d.Env, "rest-api", state.Green)); ok {
		t.Error("rest-api/green left behind")
	}
}

// TestAtomicFirstDeployIsPerService: services a deploy creates keep their
// own changes, in dependsOn and name order: there is no old version to
// switch back to.
func TestAtomicFirstDeployIsPerService(t *testing.T) {
	gc := goldenCase(t, "network-first-deploy")
	gc.Desired.Release = state.ReleaseAtomic
	p, err := reconciler.Diff(gc.Desired, gc.Observed, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, c := range p.Changes {
		if c.Kind == reconciler.Release {
			t.Errorf("first deploy planned a release: %s", c.Summary)
		}
		if c.Kind == reconciler.Create {
			creates++
		}
	}
	if creates != 3 {
		t.Errorf("%d creates, want 3:\n%s", creates, p)
	}
}

// TestAtomicUndoGoesOnPastAFailure: when one service's switch back fails,
// the others still go back, and the service that could not keeps its new
// color running (its traffic may be on it).
func TestAtomicUndoGoesOnPastAFailure(t *testing.T) {
	synctest.Test(t, testAtomicUndoGoesOnPastAFailure)
}

func testAtomicUndoGoesOnPastAFailure(t *testing.T) {
	var d *state.Desired
	d, p, h := bakeFails(t, func(c memhost.Call) error {
		if c.Op == "switch" && c.Target == d.Env+"-mcp-server" && c.Arg == string(state.Blue) {
			return errors.New("disk full")
		}
		return nil
	})
	_, err := h.Applier(nil).Apply(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "the other services were put back") {
		t.Fatalf("apply = %v, want the failed undo and the others put back", err)
	}
	if color, _ := h.Live(d.Nginx.ConfDir, d.Env, "rest-api"); color != state.Blue {
		t.Errorf("rest-api: traffic on %s, want blue", color)
	}
	if color, _ := h.Live(d.Nginx.ConfDir, d.Env, "mcp-server"); color != state.Green {
		t.Errorf("mcp-server: traffic on %s; its switch back failed, want green", color)
	}
	if _, ok := h.Container(state.ContainerName(d.Env, "mcp-server", state.Green)); !ok {
		t.Error("mcp-server: the new container was removed although its traffic may be on it")
	}
	for _, svc := range []string{"rest-api", "worker"} {
		if _, ok := h.Container(state.ContainerName(d.Env, svc, state.Green)); ok {
			t.Errorf("%s: new container left behind", svc)
		}
	}
}

// bakeFails seeds a memory host with the atomic-upgrade case, in which
// rest-api's new color (green, port 21003) fails its checks once both
// switches moved traffic; extra, when set, may fail other calls. It
// returns the case, its plan and the host.
//
// Its tests apply in a synctest bubble with the applier's real clock, not
// a memhost.Clock: the two bakes run together, and on a memhost.Clock
// every Sleep of one moves the time of both, so mcp-server's bake could
// use up rest-api's 4 minutes before rest-api failed its third check (the
// apply then succeeded, about 1 run in 100). In the bubble, time moves
// only when both bakes wait.
func bakeFails(t *testing.T, extra func(memhost.Call) error) (*state.Desired, *reconciler.Plan, *memhost.Host) {
	t.Helper()
	gc := goldenCase(t, "atomic-upgrade")
	d, o := gc.Desired, gc.Observed
	p, err := reconciler.Diff(d, o, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	h := memhost.New()
	h.Seed(d, o)
	var mu sync.Mutex
	switched := 0
	h.Fault = func(c memhost.Call) error {
		mu.Lock()
		defer mu.Unlock()
		if c.Op == "switch" && c.Arg == string(state.Green) {
			switched++
		}
		if c.Op == "check" && c.Target == "21003" && switched == 2 {
			return errors.New("connection refused")
		}
		if extra != nil {
			return extra(c)
		}
		return nil
	}
	return d, p, h
}
