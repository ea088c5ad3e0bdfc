package reconciler

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/templates"
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
	warned, logWarned := false, false
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
	// nginx's view: the last request nginx logged for the old color's
	// port. A line reaches the log up to templates.LogFlush after its
	// request ended, so the window is that much longer.
	dl, _ := a.Edge.(DrainLog)
	if s.LogPath == "" || s.HostPort == 0 {
		dl = nil
	}
	var lastUse time.Time
	off := int64(-1)
	used := func() bool {
		if dl == nil {
			return false
		}
		last, next, err := dl.LastRequest(ctx, s.LogPath, off, s.HostPort)
		if err != nil {
			if !logWarned {
				a.Log.Warn("cannot read nginx's access log "+s.LogPath+"; draining until the deadline", zap.Error(err))
				logWarned = true
			}
			return true
		}
		off = next
		if last.After(lastUse) {
			lastUse = last
		}
		return !lastUse.IsZero() && a.now().Sub(lastUse) < s.DrainIdle+templates.LogFlush
	}
	for {
		if s.DrainIdle > 0 {
			// Both views must find the old color idle; the log is read
			// at every poll, so each read is short.
			inLog := used()
			if act, ok := probe(); ok && act.Busy == 0 && !inLog {
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
