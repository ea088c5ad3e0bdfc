package reconciler_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// drainLog is the site's access log in pinnedPlan's drain.
const drainLog = "/var/log/nginx/reconciler-p-web.log"

// pinnedPlan switches web to green with blue's sessions pinned, then
// drains blue for at most 30s, until idle 5s.
func pinnedPlan() *reconciler.Plan {
	site := &reconciler.SiteChange{ConfDir: confDir}
	steps := []reconciler.Step{
		{Action: reconciler.ActStart, Target: "web/green", Name: newName, HostPort: newPort, Container: &reconciler.ContainerSpec{
			Name: newName, HostPort: newPort, Spec: state.Spec{Image: newImage, ContainerPort: 8080},
			Labels: map[string]string{state.LabelEnv: env, state.LabelService: "web", state.LabelColor: string(state.Green)}}},
		{Action: reconciler.ActPin, Target: "web/blue", Service: "web", Color: state.Blue, Site: site},
		{Action: reconciler.ActSwitch, Target: "web/green", Service: "web", Color: state.Green, Site: site},
		watchStep(time.Minute),
	}
	undoBefore := len(steps)
	steps = append(steps, reconciler.Step{Action: reconciler.ActDrain, Target: "web/blue", Name: blueName, Service: "web", Site: site,
		Drain: 30 * time.Second, DrainIdle: 5 * time.Second, ContainerPort: 8080, Unpin: true, LogPath: drainLog, HostPort: bluePort})
	return &reconciler.Plan{Env: env, Commit: "c2", Changes: []reconciler.Change{{
		Kind: reconciler.Replace, Subject: "web", Summary: "replace blue → green", OldImage: oldImage, NewImage: newImage,
		Steps: steps, UndoBefore: undoBefore,
		Undo: []reconciler.Step{
			{Action: reconciler.ActSwitch, Target: "web/blue", Service: "web", Color: state.Blue, Site: site},
			{Action: reconciler.ActUnpin, Target: "web/blue", Service: "web", Site: site},
			{Action: reconciler.ActRemove, Target: "web/green", Name: newName},
		},
	}}}
}

// TestDrainEndsWhenIdle: blue carries a stream for 2s of the drain; the
// drain ends at the first probe that finds it idle, long before its 30s
// deadline, unpins blue's sessions and only then removes blue.
func TestDrainEndsWhenIdle(t *testing.T) {
	r := newRig(t)
	var drainStart time.Time
	r.h.Busy = func(name string, port int) reconciler.Activity {
		if name != blueName || port != 8080 {
			t.Errorf("probed %s:%d, want %s:8080", name, port, blueName)
		}
		now := r.clock.Now()
		if drainStart.IsZero() {
			drainStart = now
		}
		if now.Sub(drainStart) < 2*time.Second {
			return reconciler.Activity{Conns: 3, Busy: 1}
		}
		return reconciler.Activity{Conns: 2}
	}
	res, err := r.ap.Apply(context.Background(), pinnedPlan())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drained) != 1 {
		t.Fatalf("drained %+v, want one drain", res.Drained)
	}
	d := res.Drained[0]
	if !d.Idle || d.Cut != 0 || d.Waited < 2*time.Second || d.Waited > 3*time.Second {
		t.Errorf("drain %+v, want it idle after 2s-3s, nothing cut", d)
	}
	order := []string{"pin p-web blue", "switch p-web green", "activity p-web-blue 8080", "unpin p-web", "stop p-web-blue"}
	last := -1
	for _, want := range order {
		i := r.indexOf(want)
		if i <= last {
			t.Fatalf("call %q at %d, want it after %d: %q", want, i, last, r.calls())
		}
		last = i
	}
	if c := r.h.Pinned(confDir, env, "web"); c != "" {
		t.Errorf("sessions still pinned to %q after the drain", c)
	}
}

// TestDrainWaitsForNginxLog: blue's connections look idle from the start
// (none between two requests), but nginx logs requests it sent to blue's
// port until 2s into the drain: a session in use. The drain ends once
// nginx logged none for DrainIdle plus the log's flush delay, not before.
func TestDrainWaitsForNginxLog(t *testing.T) {
	r := newRig(t)
	var drainStart time.Time
	r.h.Used = func(path string, port int) time.Time {
		if path != drainLog || port != bluePort {
			t.Errorf("read %s for port %d, want %s for %d", path, port, drainLog, bluePort)
		}
		now := r.clock.Now()
		if drainStart.IsZero() {
			drainStart = now
		}
		if end := drainStart.Add(2 * time.Second); now.After(end) {
			return end
		}
		return now
	}
	res, err := r.ap.Apply(context.Background(), pinnedPlan())
	if err != nil {
		t.Fatal(err)
	}
	// Last use at 2s; idle 5s; nginx flushes its log within 1s.
	if len(res.Drained) != 1 || !res.Drained[0].Idle || res.Drained[0].Waited < 8*time.Second || res.Drained[0].Waited > 8500*time.Millisecond {
		t.Fatalf("drained %+v, want idle after 8s-8.5s", res.Drained)
	}
	if r.indexOf("last-request "+drainLog+" "+strconv.Itoa(bluePort)) < 0 {
		t.Errorf("the drain never read nginx's log: %q", r.calls())
	}
}

// TestDrainLogUnreadable: a log that cannot be read counts as busy: the
// drain lasts until its deadline.
func TestDrainLogUnreadable(t *testing.T) {
	r := newRig(t)
	r.h.Fault = failOn(op("last-request"))
	res, err := r.ap.Apply(context.Background(), pinnedPlan())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drained) != 1 || res.Drained[0].Idle || res.Drained[0].Waited != 30*time.Second {
		t.Fatalf("drained %+v, want the whole 30s", res.Drained)
	}
}

// TestDrainDeadlineCutsStreams: blue keeps two streams open; the drain
// ends at its deadline and reports both as cut, in the Result and in the
// succeeded event.
func TestDrainDeadlineCutsStreams(t *testing.T) {
	r := newRig(t)
	r.h.Busy = func(string, int) reconciler.Activity { return reconciler.Activity{Conns: 3, Busy: 3, Open: 2} }
	res, err := r.ap.Apply(context.Background(), pinnedPlan())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drained) != 1 || res.Drained[0].Idle || res.Drained[0].Waited != 30*time.Second || res.Cut() != 2 {
		t.Fatalf("drained %+v (cut %d), want the 30s deadline and 2 cut", res.Drained, res.Cut())
	}
	if ev := r.events.got[len(r.events.got)-1]; ev.Name != state.EventDeploySucceeded || ev.StreamsCut != 2 {
		t.Errorf("last event %+v, want deploy.succeeded with 2 streams cut", ev)
	}
	if c, _ := r.h.Container(blueName); c.State != "exited" {
		t.Error("blue still runs after the deadline (want it stopped and kept)")
	}
}

// TestDrainProbeFails: a probe that fails counts as busy: the drain lasts
// until its deadline, as a fixed drain does.
func TestDrainProbeFails(t *testing.T) {
	r := newRig(t)
	r.h.Fault = failOn(op("activity"))
	res, err := r.ap.Apply(context.Background(), pinnedPlan())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Drained) != 1 || res.Drained[0].Idle || res.Drained[0].Waited != 30*time.Second || res.Cut() != 0 {
		t.Fatalf("drained %+v, want the whole 30s, nothing counted as cut", res.Drained)
	}
}

// TestPinUndone: a failure after the pin and the switch (the watch)
// switches back and unpins, so that no request with a session is sent to
// the removed new color.
func TestPinUndone(t *testing.T) {
	r := newRig(t)
	r.h.Fault = failAfter(op("switch"), op("check"))
	_, err := r.ap.Apply(context.Background(), pinnedPlan())
	if !errors.Is(err, reconciler.ErrRolledBack) {
		t.Fatalf("apply = %v, want a rollback", err)
	}
	if c := r.h.Pinned(confDir, env, "web"); c != "" {
		t.Errorf("sessions still pinned to %q after the rollback", c)
	}
	calls := r.calls()
	if i, j := slices.Index(calls, "switch p-web blue"), slices.Index(calls, "unpin p-web"); i < 0 || j < i {
		t.Errorf("calls %q: want the switch back, then the unpin", calls)
	}
}
