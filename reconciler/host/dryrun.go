package host

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/state"
)

// MigrationsDryRun runs migrations.dryRun.command as a one-off job, with
// the migrations' image and settings, when pl runs the migrations; it is
// skipped otherwise. The job's last lines go into a failure.
func (h *Host) MigrationsDryRun(ctx context.Context, pl *Planned) preflight.Result {
	const name = "migrations dry-run"
	d, p := pl.Desired, pl.Plan
	if !slices.ContainsFunc(p.Changes, func(c reconciler.Change) bool { return c.Kind == reconciler.Migrate }) {
		return preflight.Result{Name: name, Detail: "skipped: the migrations do not run at this commit"}
	}
	m := d.Migrations
	spec := m.Spec
	spec.Command = m.DryRunCommand
	job := reconciler.ContainerSpec{
		Name: d.Env + "-migrations-dry-run", Spec: spec, Network: m.Network, Timeout: m.Timeout,
		Labels: map[string]string{state.LabelEnv: d.Env, state.LabelService: "migrations", state.LabelCommit: d.Commit},
	}
	jctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	var out bytes.Buffer
	code, err := h.Runtime.RunJob(jctx, job, &out)
	tail := strings.TrimSpace(state.LastLines(out.String(), 10))
	switch {
	case err != nil:
		return preflight.Result{Name: name, Err: fmt.Errorf("%q: %w", m.DryRunCommand, err)}
	case code != 0:
		return preflight.Result{Name: name, Err: fmt.Errorf("%q exited with code %d; its output:\n%s", m.DryRunCommand, code, tail)}
	}
	h.Log.Debug("migrations dry-run passed", zap.String("output", tail))
	return preflight.Result{Name: name, Detail: fmt.Sprintf("%q exited 0", m.DryRunCommand)}
}
