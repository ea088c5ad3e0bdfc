package reconciler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
)

// TestRollback: after a release (every service replaced, the previous
// colors stopped and kept), Rollback resumes the kept colors, moves
// traffic and names back and stops the release, kept in turn: the host is
// then in sync with the previous commit, and a second rollback goes
// forward again. With nothing kept, it refuses and changes nothing.
func TestRollback(t *testing.T) {
	ctx := context.Background()
	gc := goldenCase(t, "in-sync")
	d1, o := gc.Desired, gc.Observed
	h := memhost.New()
	h.Seed(d1, o)
	ap := h.Applier(memhost.NewClock(time.Unix(0, 0)))

	if _, err := reconciler.Rollback(d1, o, reconciler.TestKey); !errors.Is(err, reconciler.ErrNothingToRollBack) {
		t.Fatalf("rollback with nothing kept: %v, want ErrNothingToRollBack", err)
	}

	d2 := goldenCase(t, "in-sync").Desired
	d2.Commit = "badc0ffee000"
	for i := range d2.Services {
		d2.Services[i].Spec.Image += "-2"
	}
	plan := func(d *state.Desired) *state.Observed {
		t.Helper()
		got, err := h.Observed(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	p, err := reconciler.Diff(d2, plan(d2), reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ap.Apply(ctx, p); err != nil {
		t.Fatalf("release: %v", err)
	}

	rb, err := reconciler.Rollback(d2, plan(d2), reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	text := rb.String()
	for _, want := range []string{"release badc0ffee000 goes", "mcp-server: roll back green → blue",
		"steps: resume mcp-server/blue, wait-healthy mcp-server/blue, switch mcp-server → blue, drain mcp-server/green 5s",
		"steps: resume worker/blue, settle worker/blue, stop worker/green"} {
		if !strings.Contains(text, want) {
			t.Errorf("rollback plan lacks %q:\n%s", want, text)
		}
	}
	if _, err := ap.Apply(ctx, rb.Plan); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	after := plan(d1)
	for _, s := range d1.Services {
		if live := after.Live(s.Name); live == nil || live.Color != state.Blue || !live.Running() || live.Spec.Image != s.Spec.Image {
			t.Errorf("%s after the rollback: live %+v, want blue running %s", s.Name, live, s.Spec.Image)
		}
		if c, ok := h.Container(state.ContainerName(d1.Env, s.Name, state.Green)); !ok || c.State != "exited" {
			t.Errorf("%s: the rolled-back release is %+v (present %v), want it stopped and kept", s.Name, c, ok)
		}
	}
	if p, err := reconciler.Diff(d1, after, reconciler.TestKey); err != nil || !p.Empty() {
		t.Fatalf("after the rollback the host differs from the previous commit (%v):\n%s", err, p)
	}
	// A second rollback goes forward again.
	rb2, err := reconciler.Rollback(d1, after, reconciler.TestKey)
	if err != nil || !strings.Contains(rb2.String(), "roll back blue → green") {
		t.Fatalf("second rollback: %v\n%s", err, rb2)
	}
}

// TestRollbackFailureKeepsRelease: a kept color that fails its health
// check is stopped again and traffic never moves.
func TestRollbackFailureKeepsRelease(t *testing.T) {
	ctx := context.Background()
	gc := goldenCase(t, "kept-previous")
	h := memhost.New()
	h.Seed(gc.Desired, gc.Observed)
	rb, err := reconciler.Rollback(gc.Desired, gc.Observed, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	h.Fault = func(c memhost.Call) error {
		if c.Op == "check" {
			return errors.New("connection refused")
		}
		return nil
	}
	_, err = h.Applier(memhost.NewClock(time.Unix(0, 0))).Apply(ctx, rb.Plan)
	if !errors.Is(err, reconciler.ErrRolledBack) {
		t.Fatalf("rollback with an unhealthy kept color: %v, want it undone", err)
	}
	if c, _ := h.Container("prod-rest-api-green"); c.State != "exited" {
		t.Errorf("the unhealthy kept color is %s, want it stopped again", c.State)
	}
	if color, _ := h.Live(gc.Desired.Nginx.ConfDir, "prod", "rest-api"); color != state.Blue {
		t.Errorf("traffic moved to %s", color)
	}
}
