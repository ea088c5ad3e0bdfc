package reconciler

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// drainPoll is how often a drain asks the DrainProber whether the old
// color is idle.
const drainPoll = 200 * time.Millisecond

// Drained is how the drain of an old color ended.
type Drained struct {
	// Target is the drained color, "api/blue".
	Target string `json:"target"`
	// Waited is how long the drain waited.
	Waited time.Duration `json:"waited"`
	// Idle is true when the drain ended because the old color was idle,
	// false when it ended at its deadline.
	Idle bool `json:"idle"`
	// Cut is how many open connections (streams, requests in flight) the
	// old color still had at the deadline (Activity.Open): they are cut
	// when it stops.
	Cut int `json:"cut"`
}

// drainWait waits until the old container of the ActDrain step s is idle
// (s.DrainIdle, measured by the Runtime when it is a DrainProber) or until
// s.Drain has passed, whichever comes first, and says how it ended. It only
// waits: what becomes of the old container afterwards is the caller's.
// Without a DrainProber, or with DrainIdle 0, it waits the whole of
// s.Drain. A probe that fails counts as busy: the drain then ends at its
// deadline, as a fixed drain would.
func (a *Applier) drainWait(ctx context.Context, s Step) (Drained, error) {
	d := Drained{Target: s.Target}
	dp, ok := a.Runtime.(DrainProber)
	if !ok || s.ContainerPort == 0 {
		start := a.now()
		err := a.drain(ctx, s.Target, s.Drain)
		d.Waited = a.now().Sub(start)
		return d, err
	}
	t := a.track(ActDrain, s.Target, s.Drain)
	defer t.done()
	start := a.now()
	deadline := start.Add(s.Drain)
	warned := false
	probe := func() (Activity, bool) {
		act, err := dp.Activity(ctx, s.Name, s.ContainerPort, s.DrainIdle)
		if err != nil {
			if !warned {
				a.Log.Warn("cannot see the connections of "+s.Name+"; draining until the deadline", zap.Error(err))
				warned = true
			}
			return act, false
		}
		return act, true
	}
	for {
		if s.DrainIdle > 0 {
			if act, ok := probe(); ok && act.Busy == 0 {
				d.Idle, d.Waited = true, a.now().Sub(start)
				return d, nil
			}
		}
		left := deadline.Sub(a.now())
		if left <= 0 {
			break
		}
		if err := a.sleep(ctx, min(drainPoll, left)); err != nil {
			d.Waited = a.now().Sub(start)
			return d, err
		}
		t.update(func(*StepProgress) {})
	}
	d.Waited = a.now().Sub(start)
	if act, ok := probe(); ok {
		d.Cut = act.Open
	}
	return d, nil
}
