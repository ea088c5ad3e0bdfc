package host

import (
	"context"
	"fmt"

	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/state"
)

// Check is reconciler check: the host checks; when they pass, the plan of
// e at src (which resolves every secret), the plan's checks and, when the
// migrations would run, their dry-run. It changes nothing on the host and
// reports every result; the report's Err says whether all passed.
func (h *Host) Check(ctx context.Context, src Source, e *state.Env, c Checks) preflight.Report {
	report := c.Host(ctx)
	if report.Err() != nil {
		return report
	}
	pl, err := h.Plan(ctx, src, e)
	if err != nil {
		return append(report, preflight.Result{Name: "secrets and plan", Err: err})
	}
	report = append(report, preflight.Result{Name: "secrets and plan",
		Detail: fmt.Sprintf("%d secret(s) resolved; %d change(s) to apply", len(e.SecretRefs()), len(pl.Plan.Changes))})
	report = append(report, c.Plan(ctx, pl.Plan)...)
	if m := pl.Desired.Migrations; m != nil && len(m.DryRunCommand) > 0 {
		report = append(report, h.MigrationsDryRun(ctx, pl))
	}
	return report
}
