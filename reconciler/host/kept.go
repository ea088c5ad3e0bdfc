package host

import (
	"context"
	"fmt"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// Kept returns the previous releases kept on the host for the scope's
// env: each service's stopped color beside its live one
// (reconciler.Kept), which reconciler rollback resumes, sorted by name.
func (h *Host) Kept(ctx context.Context, s Scope) ([]state.Container, error) {
	o, err := h.Observe(ctx, s)
	if err != nil {
		return nil, err
	}
	var out []state.Container
	for i := range o.Containers {
		c := &o.Containers[i]
		if live := o.Live(c.Service); live != nil && live.Name != c.Name && reconciler.Kept(c) {
			out = append(out, *c)
		}
	}
	return out, nil
}

// RemoveKept removes the previous releases Kept returns (nothing with
// dryRun) and returns them: after it, reconciler rollback has nothing to
// go back to until the next release, and their images are no longer in
// use (image retention may remove them).
func (h *Host) RemoveKept(ctx context.Context, s Scope, dryRun bool) ([]state.Container, error) {
	kept, err := h.Kept(ctx, s)
	if err != nil || dryRun {
		return kept, err
	}
	for i, c := range kept {
		if err := h.Runtime.Remove(ctx, c.Name, reconciler.StopTimeout); err != nil {
			return kept[:i], fmt.Errorf("remove previous release %s: %w", c.Name, err)
		}
	}
	return kept, nil
}
