package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// TriggerRollback is the trigger of the history records reconciler
// rollback writes.
const TriggerRollback = "rollback"

// ErrPaused is wrapped by the error of an agent sync that did not deploy
// a commit a rollback paused (statedir.Pause).
var ErrPaused = errors.New("deploys paused by a rollback")

// RollbackOptions are how Rollback runs.
type RollbackOptions struct {
	DeployOptions
	// Planned, when set, is called with the plan before anything on the
	// host changes (the command prints it there).
	Planned func(*Planned)
	// Notify returns the receivers of the env's events; nil tells nobody.
	// The rollback is announced as deploy.rolled_back, or deploy.failed.
	Notify func(targets []state.Notify) Notifier
}

// RolledBack is what Rollback did.
type RolledBack struct {
	Planned *Planned
	Result
	// Release is the commit rolled back, Previous the one that serves
	// again.
	Release, Previous string
	// Served is how long it took from the start until the last service's
	// traffic was on the previous release, verified through nginx.
	Served time.Duration
}

// Rollback is reconciler rollback on a locked host: the previous release
// kept on the host (reconciler.Rollback) serves again, in seconds. e at
// src gives the health, nginx and name settings (and the migrations job's
// env and secrets). It runs the plan without the pre-deploy checks (an
// emergency: the kept containers need no pull), after a backup; then it
// pauses the agent's deploys of the rolled-back commit and of src's
// (statedir.Pause) so the agent cannot put it back, records the attempt in
// the history (trigger rollback) and announces it.
func (h *Host) Rollback(ctx context.Context, src Source, e *state.Env, opts RollbackOptions) (RolledBack, error) {
	var out RolledBack
	start := time.Now()
	d, err := h.Resolve(ctx, src, e)
	if err != nil {
		return out, ListErrors(err)
	}
	o, err := h.Observe(ctx, hostScope(d))
	if err != nil {
		return out, err
	}
	rb, err := reconciler.Rollback(d, o, h.Key)
	if err != nil {
		return out, fmt.Errorf("%w; nothing was changed", err)
	}
	p := rb.Plan
	p.Author, p.Message = src.Author, "rollback of "+state.ShortHash(rb.Release)
	out.Release, out.Previous = rb.Release, p.Commit
	pl := &Planned{Env: e, Desired: d, Observed: o, Plan: p}
	out.Planned = pl
	if opts.Planned != nil {
		opts.Planned(pl)
	}
	if opts.Notify != nil {
		n := opts.Notify(d.Notify)
		defer n.Close(15 * time.Second)
		opts.Notifier = rollbackNotifier{n}
	}
	opts.Checks = nil
	res, err := h.Deploy(ctx, pl, opts.DeployOptions)
	out.Result = res
	out.Served = time.Since(start)
	if err == nil {
		err = h.servedBy(ctx, d, p)
	}
	if perr := h.Dir.SetPause(d.Env, statedir.Pause{Release: rb.Release, Tip: src.Hash, Previous: p.Commit, At: time.Now().UTC()}); perr != nil {
		err = errors.Join(err, fmt.Errorf("the agent's deploys are NOT paused: %w", perr))
	}
	if rerr := h.recordRollback(d.Env, p, start, err); rerr != nil {
		h.Log.Warn("rollback not recorded in the history", zap.Error(rerr))
	}
	return out, err
}

// hostScope is ScopeOf(d) without Route 53: a rollback resumes the kept
// containers only, and must not wait for, or fail on, the AWS API. The
// record sets stay as they are; they follow commits (git revert).
func hostScope(d *state.Desired) Scope {
	s := ScopeOf(d)
	s.DNS = false
	return s
}

// servedBy observes the host again and checks that every service the plan
// rolled back is live, and running, on the color it resumed (the switch
// steps asked nginx already).
func (h *Host) servedBy(ctx context.Context, d *state.Desired, p *reconciler.Plan) error {
	o, err := h.Observe(ctx, hostScope(d))
	if err != nil {
		return fmt.Errorf("rolled back, but the host could not be observed again to confirm it: %w", err)
	}
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			if s.Action != reconciler.ActResume {
				continue
			}
			live := o.Live(c.Subject)
			if live == nil || live.Name != s.Name || !live.Running() {
				return fmt.Errorf("rolled back, but %s is not live on %s", c.Subject, s.Name)
			}
		}
	}
	return nil
}

// recordRollback appends the rollback to env's history: trigger rollback,
// the previous release's commit, rolledBack set.
func (h *Host) recordRollback(env string, p *reconciler.Plan, start time.Time, rbErr error) error {
	rec := history.Record{Env: env, Commit: p.Commit, Author: p.Author, Message: p.Message, Trigger: TriggerRollback,
		Start: start.UTC(), End: time.Now().UTC(), Result: history.Succeeded, Steps: p.Lines(), RolledBack: rbErr == nil}
	if rbErr != nil {
		rec.Result, rec.Error = history.Failed, rbErr.Error()
	}
	st, err := history.Open(h.Dir.HistoryPath(env))
	if err != nil {
		return err
	}
	err = st.Append(rec)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}

// rollbackNotifier announces a rollback: its success as
// deploy.rolled_back, its failure as deploy.failed; the executor's other
// events (started, an undone change) say nothing more.
type rollbackNotifier struct{ n reconciler.Notifier }

func (r rollbackNotifier) Notify(ctx context.Context, e reconciler.Event) {
	switch e.Name {
	case state.EventDeploySucceeded:
		e.Name = state.EventDeployRolledBack
	case state.EventDeployFailed:
	default:
		return
	}
	r.n.Notify(ctx, e)
}

// Resume lifts env's pause (set by Rollback): the agent deploys the
// branch's tip again, even the commit that was rolled back. It returns
// the pause it lifted, nil when there was none.
func (h *Host) Resume(env string) (*statedir.Pause, error) {
	return h.Dir.Unpause(env)
}

// paused returns the error of a sync of commit that a pause forbids; nil
// otherwise. A pause that does not hold commit (a new commit landed, the
// revert) is lifted.
func (s *Syncer) paused(commit string) error {
	pz, err := s.Dir.Paused(s.Env)
	if err != nil || pz == nil {
		return err
	}
	if pz.Holds(commit) {
		return fmt.Errorf("%w: commit %s was rolled back to %s at %s; push the revert (git revert %s) or run reconciler resume --env %s",
			ErrPaused, state.ShortHash(commit), state.ShortHash(pz.Previous), pz.At.Format(time.RFC3339), state.ShortHash(pz.Release), s.Env)
	}
	if _, err := s.Dir.Unpause(s.Env); err != nil {
		return err
	}
	s.Log.Info("deploys resumed: a new commit landed after the rollback", zap.String("commit", state.ShortHash(commit)), zap.String("rolledBack", state.ShortHash(pz.Release)))
	return nil
}
