package main

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/state"
)

// deploy carries out p, a plan with changes made from snapshot o, the way
// both apply and the agent do: the pre-deploy checks (unless checks is
// nil), a backup, the AWS APIs the plan's steps need, the plan itself
// through ap, then image retention. Nothing on the host changes before the
// checks and the backup passed; retention never fails a deploy that
// worked. It returns where the backup went, what the plan's apply
// reported (also when it failed) and what retention removed.
func deploy(ctx context.Context, g *globals, h *host, e *state.Env, d *state.Desired, o *state.Observed, p *reconciler.Plan,
	checks *preflight.Checker, ap *reconciler.Applier) (backedUp string, res reconciler.Result, pruned pruneReport, err error) {
	if checks != nil {
		if err := errors.Join(checks.Host(ctx).Err(), checks.Plan(ctx, p).Err()); err != nil {
			return "", res, pruned, fmt.Errorf("%w; nothing was changed", listErrors(err))
		}
	}
	if backedUp, err = takeBackup(ctx, g, o, d, e, p); err != nil {
		return "", res, pruned, err
	}
	if err := withCloud(ctx, g, ap, d); err != nil {
		return backedUp, res, pruned, fmt.Errorf("%w; nothing was changed", err)
	}
	if res, err = ap.Apply(ctx, p); err != nil {
		return backedUp, res, pruned, err
	}
	pruned, rerr := h.retain(ctx, p.Env, e.KeepImages, false)
	if rerr != nil {
		g.log.Warn("image retention failed; the deploy stands", zap.Error(rerr))
	}
	return backedUp, res, pruned, nil
}
