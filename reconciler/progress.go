package reconciler

import (
	"context"
	"time"
)

// Progress is told how the executor's long steps go: a pull, a health wait
// (wait-healthy, settle), a watch (a bake or a canary step) and a drain.
// The Applier calls Update on each round of the step's wait (each health
// interval, each progressTick of a drain, each progress message of a
// pull) and Done once when the step ends, passed or failed. Both are
// called from the goroutine that runs Apply; what is shown, and how often,
// is the implementation's choice.
type Progress interface {
	Update(StepProgress)
	Done(StepProgress)
}

// StepProgress is what is known of a long step so far. Times are the
// Applier's Clock's.
type StepProgress struct {
	// Action and Target name the step: "watch" and "web/green", or "pull"
	// and the image reference.
	Action Action
	Target string
	// Elapsed is the time since the step began; Limit bounds it (the
	// watch's duration, health.startTimeout, the drain), or 0 for none
	// (a pull).
	Elapsed, Limit time.Duration
	// Watch: what the access log counted so far, when Counted.
	Traffic Traffic
	Counted bool
	// Health waits: consecutive passes so far, out of Want.
	Passes, Want int
	// Pull: bytes downloaded so far, out of Total (0: not yet known).
	Bytes, Total int64
}

// ProgressPuller is a Runtime whose pulls report their bytes as they come;
// the Applier uses it, when the Runtime is one, for a pull it reports.
type ProgressPuller interface {
	// PullProgress is Pull, calling report with the bytes downloaded so
	// far and the total known so far.
	PullProgress(ctx context.Context, ref string, report func(done, total int64)) (imageID string, err error)
}

// progressTick is how often a drain reports while it waits.
const progressTick = time.Second

// tracker reports one long step to the Applier's Progress; with none it
// does nothing.
type tracker struct {
	p     Progress
	now   func() time.Time
	start time.Time
	sp    StepProgress
}

func (a *Applier) track(action Action, target string, limit time.Duration) *tracker {
	t := &tracker{p: a.Progress, now: a.now, sp: StepProgress{Action: action, Target: target, Limit: limit}}
	if t.p != nil {
		t.start = t.now()
	}
	return t
}

// update reports the step after f changed its facts.
func (t *tracker) update(f func(*StepProgress)) {
	if t.p == nil {
		return
	}
	f(&t.sp)
	t.sp.Elapsed = t.now().Sub(t.start)
	t.p.Update(t.sp)
}

// done reports the end of the step.
func (t *tracker) done() {
	if t.p == nil {
		return
	}
	t.sp.Elapsed = t.now().Sub(t.start)
	t.p.Done(t.sp)
}

// drain waits d, reporting every progressTick when there is a Progress.
func (a *Applier) drain(ctx context.Context, target string, d time.Duration) error {
	if a.Progress == nil {
		return a.sleep(ctx, d)
	}
	t := a.track(ActDrain, target, d)
	defer t.done()
	deadline := a.now().Add(d)
	for {
		left := deadline.Sub(a.now())
		if left <= 0 {
			return nil
		}
		if err := a.sleep(ctx, min(progressTick, left)); err != nil {
			return err
		}
		t.update(func(*StepProgress) {})
	}
}

// pull pulls ref, reporting its bytes when there is a Progress and the
// Runtime can.
func (a *Applier) pull(ctx context.Context, ref string) error {
	pp, ok := a.Runtime.(ProgressPuller)
	if a.Progress == nil || !ok {
		_, err := a.Runtime.Pull(ctx, ref)
		return err
	}
	t := a.track(ActPull, ref, 0)
	defer t.done()
	_, err := pp.PullProgress(ctx, ref, func(done, total int64) {
		t.update(func(sp *StepProgress) { sp.Bytes, sp.Total = done, total })
	})
	return err
}
