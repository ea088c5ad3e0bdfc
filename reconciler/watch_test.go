package reconciler_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
)

// movePlan replaces web blue → green with the given steps between the
// wait for health and the end of the undo window, and no drain, so that
// every sleep after the wait belongs to those steps.
func movePlan(move ...reconciler.Step) *reconciler.Plan {
	p := replacePlan()
	c := &p.Changes[0]
	c.Steps = append(slices.Clone(c.Steps[:2]), move...)
	c.UndoBefore = len(c.Steps)
	c.Undo = slices.DeleteFunc(c.Undo, func(s reconciler.Step) bool { return s.Action == reconciler.ActName })
	return p
}

func shiftStep(pct int) reconciler.Step {
	return reconciler.Step{Action: reconciler.ActShift, Target: "web/green", Service: "web", Color: state.Green, Percent: pct, Site: &reconciler.SiteChange{ConfDir: confDir}}
}

func switchStep() reconciler.Step {
	return reconciler.Step{Action: reconciler.ActSwitch, Target: "web/green", Service: "web", Color: state.Green, Site: &reconciler.SiteChange{ConfDir: confDir}}
}

// checks counts the health checks of green once traffic moved, and fails
// those for which fail (given their number, from 1) is true.
type checks struct {
	mu    sync.Mutex
	moved bool
	n     int
	fail  func(n int) bool
}

func (c *checks) hook(call memhost.Call) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if call.Op == "shift" || call.Op == "switch" && call.Arg == string(state.Green) {
		c.moved = true
	}
	if !c.moved || call.Op != "check" {
		return nil
	}
	c.n++
	if c.fail != nil && c.fail(c.n) {
		return errBoom
	}
	return nil
}

func (c *checks) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestWatchHealth: unhealthyThreshold consecutive failed checks of a color
// with traffic switch it back; fewer, with passes between, do not.
func TestWatchHealth(t *testing.T) {
	t.Run("threshold reached", func(t *testing.T) {
		r := newRig(t)
		c := &checks{fail: func(n int) bool { return n >= 4 }}
		r.h.Fault = c.hook
		_, err := r.ap.Apply(context.Background(), movePlan(switchStep(), watchStep(5*time.Minute)))
		r.wantRolledBack(t, err)
		if !strings.Contains(err.Error(), "3 consecutive failed checks of GET /health while it had traffic") {
			t.Errorf("error %q does not name the failed checks", err)
		}
		if n := c.count(); n != 6 {
			t.Errorf("%d checks with traffic, want 6: 3 passes, then the third failure stops the watch", n)
		}
	})
	t.Run("under the threshold", func(t *testing.T) {
		r := newRig(t)
		c := &checks{fail: func(n int) bool { return n%3 != 0 }} // two failures, a pass, ...
		r.h.Fault = c.hook
		if _, err := r.ap.Apply(context.Background(), movePlan(switchStep(), watchStep(5*time.Minute))); err != nil {
			t.Fatal(err)
		}
		if n := c.count(); n != 61 {
			t.Errorf("%d checks in a 5m watch every 5s, want 61", n)
		}
		if color, _ := r.h.Live(confDir, env, "web"); color != state.Green {
			t.Errorf("traffic on %s, want green", color)
		}
	})
}

// TestWatchRestart: a restart of the new color during the watch switches
// traffic back at once.
func TestWatchRestart(t *testing.T) {
	r := newRig(t)
	c := &checks{}
	r.h.Fault = c.hook
	r.clock.OnSleep = func(time.Time) {
		if c.count() == 3 {
			r.h.Update(newName, func(ct *state.Container) { ct.RestartCount = 1 })
		}
	}
	_, err := r.ap.Apply(context.Background(), movePlan(switchStep(), watchStep(5*time.Minute)))
	r.wantRolledBack(t, err)
	if !strings.Contains(err.Error(), "after 1 restart(s)") {
		t.Errorf("error %q does not name the restart", err)
	}
	if n := c.count(); n != 3 {
		t.Errorf("%d checks, want 3: the restart ends the watch before the next", n)
	}
}

// serve makes green answer ok and bad (5xx) requests, and blue 10 5xx
// answers that are not green's, in the access log at each sleep once
// traffic moved; it returns what green served.
func serve(r *rig, c *checks, ok, bad int, times int) *reconciler.Traffic {
	var served reconciler.Traffic
	n := 0
	r.clock.OnSleep = func(time.Time) {
		c.mu.Lock()
		moved := c.moved
		c.mu.Unlock()
		if !moved || n >= times {
			return
		}
		n++
		r.h.Serve(logPath, state.Green, 200, ok)
		r.h.Serve(logPath, state.Green, 502, bad)
		r.h.Serve(logPath, state.Blue, 500, 10)
		served.Requests += ok + bad
		served.Errors += bad
	}
	return &served
}

// TestWatchErrorRate: the watch counts green's answers in the access log
// from where it began; above maxErrorRate, once minRequests were seen, it
// switches back; under it, or with too few requests, it passes. The
// Result holds what was counted either way.
func TestWatchErrorRate(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ok, bad, times  int
		fail            bool
		wantRequests    int
		wantErrors      int
		wantErrorSubstr string
	}{
		{name: "above", ok: 4, bad: 1, times: 100, fail: true, wantRequests: 20, wantErrors: 4,
			wantErrorSubstr: "4 of 20 requests (20.0%) answered 5xx, above maxErrorRate 10.0%"},
		{name: "under", ok: 19, bad: 1, times: 100, wantRequests: 60 * 20, wantErrors: 60},
		{name: "too few requests", ok: 0, bad: 5, times: 3, wantRequests: 15, wantErrors: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			c := &checks{}
			r.h.Fault = c.hook
			r.h.Serve(logPath, state.Green, 500, 50) // before the watch: not counted
			served := serve(r, c, tc.ok, tc.bad, tc.times)
			res, err := r.ap.Apply(context.Background(), movePlan(switchStep(), watchStep(5*time.Minute)))
			if tc.fail {
				r.wantRolledBack(t, err)
				if !strings.Contains(err.Error(), tc.wantErrorSubstr) {
					t.Errorf("error %q does not say %q", err, tc.wantErrorSubstr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			want := reconciler.Traffic{Requests: tc.wantRequests, Errors: tc.wantErrors}
			if got := res.Watched["web"]; got.Requests != want.Requests || got.Errors != want.Errors {
				t.Errorf("watched %+v, want %+v (green served %+v in all)", got, want, *served)
			}
		})
	}
}

// greenShare is green's share of the traffic after call, share before it.
func greenShare(share int, call memhost.Call) int {
	switch {
	case call.Op == "shift":
		pct, _, _ := strings.Cut(call.Arg, "%")
		n, _ := strconv.Atoi(pct)
		return n
	case call.Op == "switch" && call.Arg == string(state.Green):
		return 100
	case call.Op == "switch":
		return 0
	}
	return share
}

// TestCanary: each shift step moves its share and is watched; the switch
// ends the canary with all traffic on green; an abort at any step sends
// 0% to green. The Result sums what the service's watches counted.
func TestCanary(t *testing.T) {
	plan := func() *reconciler.Plan {
		return movePlan(shiftStep(10), watchStep(time.Minute), shiftStep(50), watchStep(time.Minute), switchStep(), watchStep(time.Minute))
	}
	t.Run("steps", func(t *testing.T) {
		r := newRig(t)
		c := &checks{}
		var shares []int
		share := 0 // green's, as the calls set it
		r.h.Fault = func(call memhost.Call) error {
			share = greenShare(share, call)
			if call.Op == "check" && (len(shares) == 0 || shares[len(shares)-1] != share) {
				shares = append(shares, share)
			}
			return c.hook(call)
		}
		served := serve(r, c, 10, 0, 1000)
		res, err := r.ap.Apply(context.Background(), plan())
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{0, 10, 50, 100}; !slices.Equal(shares, want) {
			t.Errorf("green's share at the checks: %v, want %v (none while waiting for health, then 10, 50, 100)", shares, want)
		}
		if color, pct := r.h.Live(confDir, env, "web"); color != state.Green || pct != 100 {
			t.Errorf("traffic goes %d%% to %s, want all of it on green", pct, color)
		}
		if got := res.Watched["web"]; got.Requests != served.Requests || got.Errors != served.Errors || got.Requests != 3*12*10 {
			t.Errorf("watched %+v, want %+v: three 1m watches of 12 sleeps, 10 requests each", got, *served)
		}
	})
	t.Run("abort", func(t *testing.T) {
		r := newRig(t)
		aborted := false
		share := 0
		r.h.Fault = func(call memhost.Call) error {
			share = greenShare(share, call)
			if call.Op == "check" && share == 50 {
				aborted = true
				return errBoom
			}
			return nil
		}
		_, err := r.ap.Apply(context.Background(), plan())
		r.wantRolledBack(t, err)
		if !aborted || !strings.Contains(err.Error(), "watch web/green 1m0s") {
			t.Errorf("apply = %v (aborted at 50%%: %v), want the 50%% watch's failure", err, aborted)
		}
		if i := slices.Index(r.calls(), "switch p-web green"); i >= 0 {
			t.Errorf("green got all of the traffic before the abort: %q", r.calls())
		}
	})
}

// TestWaitHealthy: failures before the first pass only count against
// startTimeout (on the Applier's clock); after a pass, unhealthyThreshold
// consecutive failures fail at once.
func TestWaitHealthy(t *testing.T) {
	plan := func() *reconciler.Plan { return movePlan(switchStep()) }
	elapsed := func(r *rig) time.Duration {
		var d time.Duration
		for _, s := range r.clock.Slept() {
			d += s
		}
		return d
	}
	checkHook := func(fail func(n int) bool) (func(memhost.Call) error, *int) {
		n := 0
		return func(c memhost.Call) error {
			if c.Op != "check" {
				return nil
			}
			n++
			if fail(n) {
				return errBoom
			}
			return nil
		}, &n
	}
	t.Run("slow start", func(t *testing.T) {
		r := newRig(t)
		hook, n := checkHook(func(n int) bool { return n <= 5 })
		r.h.Fault = hook
		if _, err := r.ap.Apply(context.Background(), plan()); err != nil {
			t.Fatal(err)
		}
		if *n != 7 || elapsed(r) != 30*time.Second {
			t.Errorf("%d checks in %s, want 5 failures and 2 passes, 5s apart", *n, elapsed(r))
		}
	})
	t.Run("start timeout", func(t *testing.T) {
		r := newRig(t)
		hook, _ := checkHook(func(int) bool { return true })
		r.h.Fault = hook
		_, err := r.ap.Apply(context.Background(), plan())
		r.wantRolledBack(t, err)
		if !errors.Is(err, reconciler.ErrUnhealthy) || !strings.Contains(err.Error(), "startTimeout 1m0s") {
			t.Errorf("apply = %v, want not healthy within startTimeout", err)
		}
		if d := elapsed(r); d < time.Minute || d > time.Minute+5*time.Second {
			t.Errorf("gave up after %s of the clock, want startTimeout 1m", d)
		}
	})
	t.Run("unhealthy after a pass", func(t *testing.T) {
		r := newRig(t)
		hook, n := checkHook(func(n int) bool { return n > 1 })
		r.h.Fault = hook
		r.h.SetLogs(newName, "panic: db\n")
		_, err := r.ap.Apply(context.Background(), plan())
		r.wantRolledBack(t, err)
		if !strings.Contains(err.Error(), "3 consecutive failed checks of GET /health") || *n != 4 {
			t.Errorf("apply = %v after %d checks, want it to fail at the third failure after the pass", err, *n)
		}
		if !strings.Contains(err.Error(), "last log lines of p-web-green:\n    panic: db") {
			t.Errorf("error %q lacks the container's last log lines", err)
		}
	})
}

// TestSettle: a worker settles after healthyThreshold checks without a
// restart; a restart fails it.
func TestSettle(t *testing.T) {
	plan := func() *reconciler.Plan {
		p := replacePlan()
		c := &p.Changes[0]
		c.Steps = []reconciler.Step{c.Steps[0], {Action: reconciler.ActSettle, Target: "web/green", Name: newName, Health: health()}}
		c.UndoBefore = 2
		c.Undo = []reconciler.Step{{Action: reconciler.ActRemove, Target: "web/green", Name: newName}}
		return p
	}
	r := newRig(t)
	if _, err := r.ap.Apply(context.Background(), plan()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.clock.Slept(), []time.Duration{5 * time.Second, 5 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("slept %v, want %v (healthyThreshold 2, interval 5s)", got, want)
	}
	r = newRig(t)
	r.clock.OnSleep = func(time.Time) { r.h.Update(newName, func(c *state.Container) { c.RestartCount++ }) }
	if _, err := r.ap.Apply(context.Background(), plan()); !errors.Is(err, reconciler.ErrRolledBack) || !strings.Contains(err.Error(), "after 1 restart(s)") {
		t.Errorf("apply with a restarting worker = %v, want a rollback naming the restart", err)
	}
}
