package reconciler_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
)

// progressLog records what the Applier reports.
type progressLog struct {
	updates []reconciler.StepProgress
	done    []reconciler.StepProgress
}

func (p *progressLog) Update(sp reconciler.StepProgress) { p.updates = append(p.updates, sp) }
func (p *progressLog) Done(sp reconciler.StepProgress)   { p.done = append(p.done, sp) }

// of returns the updates of one step.
func (p *progressLog) of(a reconciler.Action, target string) []reconciler.StepProgress {
	var out []reconciler.StepProgress
	for _, u := range p.updates {
		if u.Action == a && u.Target == target {
			out = append(out, u)
		}
	}
	return out
}

// TestProgress: with a Progress, the pull reports its bytes, the health
// wait its passes, each watch its time and what the access log counted,
// and the drain each second; each step ends with one Done, on the virtual
// clock's time. Without one, the drain is a single wait as before.
func TestProgress(t *testing.T) {
	r := newRig(t)
	c := &checks{}
	r.h.Fault = c.hook
	served := serve(r, c, 19, 1, 1000)
	prog := &progressLog{}
	r.ap.Progress = prog
	p := replacePlan()
	p.Changes[0].Steps = append([]reconciler.Step{{Action: reconciler.ActPull, Target: newImage, Image: newImage}}, p.Changes[0].Steps...)
	p.Changes[0].UndoBefore++
	if _, err := r.ap.Apply(context.Background(), p); err != nil {
		t.Fatal(err)
	}

	pull := prog.of(reconciler.ActPull, newImage)
	if len(pull) != 3 || pull[2].Bytes != memhost.PullSize || pull[2].Total != memhost.PullSize {
		t.Errorf("pull updates %+v, want 3 ending at %d of %d bytes", pull, memhost.PullSize, memhost.PullSize)
	}

	wait := prog.of(reconciler.ActWaitHealthy, "web/green")
	if len(wait) == 0 || wait[0].Passes != 1 || wait[0].Want != 2 || wait[0].Limit != time.Minute {
		t.Errorf("wait-healthy updates %+v, want 1 of 2 passes within 1m", wait)
	}

	watch := prog.of(reconciler.ActWatch, "web/green")
	// The canary step's watch (1m) and the bake (5m), one update per
	// health interval (5s) and one at the start: 13 + 61.
	if len(watch) != 13+61 {
		t.Fatalf("%d watch updates, want 74", len(watch))
	}
	last := watch[len(watch)-1]
	if last.Elapsed != 5*time.Minute || last.Limit != 5*time.Minute || !last.Counted {
		t.Errorf("last watch update %+v, want 5m of 5m, counted", last)
	}
	var counted reconciler.Traffic
	counted.Requests = watch[12].Traffic.Requests + last.Traffic.Requests
	counted.Errors = watch[12].Traffic.Errors + last.Traffic.Errors
	if counted.Requests == 0 || counted.Requests > served.Requests || counted.Errors*20 != counted.Requests {
		t.Errorf("watches counted %+v; green served %+v (1 in 20 a 5xx)", counted, *served)
	}
	for i := 1; i < len(watch); i++ {
		if watch[i].Elapsed < watch[i-1].Elapsed && watch[i].Elapsed != 0 {
			t.Fatalf("watch time went back: %s after %s", watch[i].Elapsed, watch[i-1].Elapsed)
		}
	}

	drain := prog.of(reconciler.ActDrain, "web/blue")
	if len(drain) != 30 || drain[0].Elapsed != time.Second || drain[29].Elapsed != 30*time.Second || drain[29].Limit != 30*time.Second {
		t.Errorf("drain updates %d (first %+v), want 30, one a second up to 30s", len(drain), drain[:min(1, len(drain))])
	}

	var ended []string
	for _, d := range prog.done {
		ended = append(ended, string(d.Action)+" "+d.Target)
	}
	want := []string{"pull " + newImage, "wait-healthy web/green", "watch web/green", "watch web/green", "drain web/blue"}
	if !slices.Equal(ended, want) {
		t.Errorf("done %v, want %v", ended, want)
	}
	if d := prog.done[len(prog.done)-1]; d.Elapsed != 30*time.Second {
		t.Errorf("drain done after %s, want 30s", d.Elapsed)
	}

	// Without a Progress the drain is one wait.
	r2 := newRig(t)
	if _, err := r2.ap.Apply(context.Background(), replacePlan()); err != nil {
		t.Fatal(err)
	}
	if s := r2.clock.Slept(); s[len(s)-1] != 30*time.Second {
		t.Errorf("without a Progress the last wait is %s, want the drain's 30s", s[len(s)-1])
	}
}
