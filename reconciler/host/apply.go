package host

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// ApplyOptions are how Apply runs.
type ApplyOptions struct {
	DeployOptions
	// ForwardOnly refuses a commit that does not contain what the host runs
	// (CheckForward).
	ForwardOnly bool
	// Record says where the attempt's metrics go besides the history.
	Record RecordOptions
	// Planned, when set, is called with the plan before anything on the
	// host changes (apply prints it there).
	Planned func(*Planned)
	// Start is when the attempt began (for its duration); zero means now.
	Start time.Time
	// Notify returns the receivers of the env's events (the plan's
	// notify targets); nil tells nobody. It is closed when Apply returns.
	Notify func(targets []state.Notify) Notifier
}

// Applied is what Apply did.
type Applied struct {
	// Planned is the plan and what it was made from; nil when planning
	// failed.
	Planned *Planned
	Result
	// InSync is true when there was nothing to change.
	InSync bool
}

// Apply is reconciler apply on a locked host: plan e at src, refuse a
// backward commit with ForwardOnly, then either keep the sites' health
// checks in step (in sync: no check, no backup) or Deploy, and after a
// deploy observe the host again and confirm nothing is left to do (a
// deploy that leaves a difference is an error). Every attempt
// that got as far as planning is recorded in the history and the metrics
// file, as the agent's are. A failed plan on a host whose own checks fail
// is reported with the checks' error, which explains it better.
func (h *Host) Apply(ctx context.Context, src Source, e *state.Env, opts ApplyOptions) (Applied, error) {
	var out Applied
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	record := func(res Result, err error) {
		if _, rerr := h.RecordApply(e.Environment, src, out.Planned, opts.Start, res, err, opts.Record); rerr != nil {
			h.Log.Warn("deploy not fully recorded", zap.Error(rerr))
		}
	}
	pl, err := h.Plan(ctx, src, e)
	if err != nil {
		record(Result{}, err)
		if opts.Checks != nil {
			if herr := opts.Checks.Host(ctx).Err(); herr != nil {
				return out, nothingChanged(ListErrors(herr))
			}
		}
		return out, ListErrors(err)
	}
	out.Planned = pl
	if opts.ForwardOnly {
		if err := CheckForward(src, pl.Observed); err != nil {
			return out, err
		}
	}
	if opts.Planned != nil {
		opts.Planned(pl)
	}
	if pl.Plan.Empty() {
		out.InSync = true
		// Nothing to check, nothing to back up; the sites' health checks
		// still follow the env (route53.healthChecks).
		lines, err := h.SyncSiteChecks(ctx, e, opts.Cloud)
		out.SiteChecks = lines
		if err != nil {
			out.Warnings = append(out.Warnings, err.Error())
		}
		return out, nil
	}
	if opts.Notify != nil {
		n := opts.Notify(pl.Desired.Notify)
		defer n.Close(15 * time.Second)
		opts.Notifier = n
	}
	res, err := h.Deploy(ctx, pl, opts.DeployOptions)
	out.Result = res
	if err == nil {
		_, err = h.confirm(ctx, pl)
	}
	record(res, err)
	if err != nil {
		return out, err
	}
	return out, nil
}

// confirm observes the host again and plans the same desired state
// against it: "converged" is said only when nothing is left to do.
// It returns what it observed.
func (h *Host) confirm(ctx context.Context, pl *Planned) (*state.Observed, error) {
	o, err := h.Observe(ctx, ScopeOf(pl.Desired))
	if err != nil {
		return nil, fmt.Errorf("deployed, but the host could not be observed again to confirm it: %w", err)
	}
	p, err := reconciler.Diff(pl.Desired, o, h.Key)
	if err != nil {
		return o, fmt.Errorf("deployed, but the host could not be planned again to confirm it: %w", err)
	}
	if !p.Empty() {
		return o, fmt.Errorf("deployed, but the host still differs from %s: %s", state.ShortHash(pl.Plan.Commit), strings.Join(p.Lines(), "; "))
	}
	return o, nil
}
