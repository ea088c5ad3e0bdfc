package reconciler

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

// failStart is a Runtime whose Start fails; it records removals.
type failStart struct{ removed []string }

func (f *failStart) Pull(context.Context, string) (string, error) { return "", nil }
func (f *failStart) Start(context.Context, ContainerSpec) error   { return errors.New("no space left") }
func (f *failStart) Inspect(context.Context, string) (state.Container, error) {
	return state.Container{}, ErrNotFound
}
func (f *failStart) Remove(_ context.Context, name string, _ time.Duration) error {
	f.removed = append(f.removed, name)
	return nil
}
func (f *failStart) Stop(context.Context, string, time.Duration) error { return nil }
func (f *failStart) Resume(context.Context, string) error              { return nil }
func (f *failStart) Logs(context.Context, string, int) (string, error) { return "", nil }
func (f *failStart) RunJob(context.Context, ContainerSpec, io.Writer) (int, error) {
	return 0, nil
}
func (f *failStart) Alias(context.Context, string, string, []string) error { return nil }
func (f *failStart) EnsureNameProxy(context.Context, NameProxySpec) error  { return nil }
func (f *failStart) Exec(context.Context, string, []string) (int, string, error) {
	return 1, "selftest failed", nil
}

// TestRolledBackError: an undone change's error matches ErrRolledBack and
// keeps its text; a failure after the switch does not match.
func TestRolledBackError(t *testing.T) {
	rt := &failStart{}
	a := &Applier{Runtime: rt, Log: zap.NewNop()}
	start := Step{Action: ActStart, Target: "web/green", Container: &ContainerSpec{Name: "p-web-green"}}
	undo := Step{Action: ActRemove, Target: "web/green", Name: "p-web-green"}
	p := &Plan{Env: "p", Changes: []Change{{Kind: Replace, Subject: "web", Steps: []Step{start}, Undo: []Step{undo}, UndoBefore: 1}}}
	_, err := a.Apply(context.Background(), p)
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "rolled back: remove web/green") || len(rt.removed) != 1 {
		t.Fatalf("apply = %v (removed %v), want a rolled-back error", err, rt.removed)
	}
	p.Changes[0].UndoBefore = 0
	if _, err := a.Apply(context.Background(), p); err == nil || errors.Is(err, ErrRolledBack) {
		t.Fatalf("failure without undo = %v, want an error that is not ErrRolledBack", err)
	}
}
