// Package agent is the GitOps loop of `reconciler run`: it fetches the
// desired-state branch on a timer or a webhook, deploys each new commit
// once, repairs drift from the applied commit, keeps a history of every
// attempt and serves health, status and metrics over HTTP.
//
// The loop decides; it does no git, Docker or nginx work itself. Those are
// injected as functions (Config.Fetch, Verify, Sync), so the loop is tested
// with small fakes and the command wires in the real adapters.
package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/state"
)

// Results as recorded in the history and the deployments metric.
const (
	resultSucceeded   = history.Succeeded
	resultFailed      = history.Failed
	resultRefused     = history.Refused
	resultInterrupted = history.Interrupted
	resultTransient   = history.Transient
)

// Triggers of a sync.
const (
	TriggerStart   = "start"
	TriggerPoll    = "poll"
	TriggerWebhook = "webhook"
	TriggerHeal    = "heal"
)

// Revision is one commit of the desired-state branch.
type Revision struct {
	Hash    string
	Author  string
	Message string
}

// Outcome is what one Sync saw and did.
type Outcome struct {
	// Changes are the planned changes, one line each, in order; empty when
	// the host was in sync.
	Changes []string
	// Services are the environment's containers as last observed.
	Services []Service
	// Requests and Errors are what the watches of this sync (bake, canary
	// steps) counted through nginx: availability during deploys.
	Requests, Errors int
	// StreamsCut is how many busy connections of old colors the drains
	// of this sync cut at their deadline.
	StreamsCut int
	// CrashLooping are the containers that restarted at least
	// CrashLoopRestarts times, as last observed.
	CrashLooping []string
	// UnhealthySites are the sites that nginx routes otherwise than
	// their markers say, or that answer 5xx while their live container
	// is healthy, as last asked through nginx.
	UnhealthySites []string
}

// CrashLoopRestarts is the restart count from which a container counts as
// crash-looping outside a deploy (the engine's restart policy keeps
// restarting it with backoff; the agent reports it).
const CrashLoopRestarts = 3

// Service is one container of the environment, for /status.
type Service struct {
	Service   string `json:"service"`
	Container string `json:"container"`
	Color     string `json:"color"`
	State     string `json:"state"`
	Image     string `json:"image"`
	Commit    string `json:"commit,omitempty"`
	Live      bool   `json:"live"` // nginx sends this service's traffic here
}

// Config wires the agent. Fetch and Sync are required.
type Config struct {
	Env string
	// Interval is the poll period; each wait is jittered by ±10%.
	Interval time.Duration
	// HealInterval is the period of drift checks; 0 disables them.
	HealInterval time.Duration
	// Repair makes drift checks repair what they find (else they report).
	Repair bool
	// MaxBackoff caps the retry delay after a transient error; 0 means Interval.
	MaxBackoff time.Duration
	// Idle, when set, runs after each sync and each drift check, before
	// the agent waits for the next (run returns the freed heap to the
	// system there, see cmd/reconciler).
	Idle func()

	// Fetch returns the branch tip. Its errors are transient.
	Fetch func(ctx context.Context) (Revision, error)
	// Ancestry, when set, returns the commits after applied up to and
	// including tip, oldest first, or an error wrapping ErrNotDescendant
	// when tip does not descend from applied (a force-push, a replayed
	// older commit); its other errors are transient. Such a tip is
	// refused, unless AllowRewrite. A first deploy (nothing applied) is
	// not checked.
	Ancestry func(ctx context.Context, applied, tip string) ([]Revision, error)
	// AllowRewrite deploys a tip that does not descend from the applied
	// commit (Verify then sees the tip only): what an operator sets after
	// rewriting the branch on purpose.
	AllowRewrite bool
	// Verify, when set, refuses a revision (unsigned, untrusted) with an
	// error that says why; a refused revision is never synced. With
	// Ancestry it is asked about every commit between the applied one
	// and the tip, and one refusal refuses the tip.
	Verify func(ctx context.Context, rev Revision) error
	// Refused, when set, announces a refused revision (deploy.refused)
	// with the reason; applied is the applied commit (zero before a first
	// deploy). It is called once per refusal.
	Refused func(ctx context.Context, applied, rev Revision, reason error)
	// RequireCI, when set, runs after Verify: an error wrapped with
	// Transient (checks still running) makes the agent wait and ask again
	// with backoff, recording nothing; another error (a required check
	// failed) refuses the revision like a bad signature.
	RequireCI func(ctx context.Context, rev Revision) error
	// Sync plans the host against rev and, unless mode is Check, applies
	// the plan: as a deploy of a new commit (Deploy) or as a repair of the
	// applied one (Heal), which is announced as drift.repaired. Errors
	// wrapped with Transient are retried with backoff; others mark rev as
	// failed. A cancelled ctx must leave the host at a safe point
	// (reconciler.Applier does).
	Sync func(ctx context.Context, rev Revision, mode Mode) (Outcome, error)

	// History records every attempt; History.Append errors are logged.
	History interface{ Append(history.Record) error }
	// Past is the history so far, oldest first: the applied commit and the
	// last failed one are taken from it, so a restart neither redeploys a
	// failed commit in a loop nor forgets what is applied.
	Past    []history.Record
	Metrics *Metrics
	Log     *zap.Logger
	// Fleet, when set, returns the host's view of its env's fleet, shown
	// in /status as "fleet".
	Fleet func() any
}

// Mode is what a Sync does with its plan; the agent decides it, so the
// syncer keeps no copy of what is applied.
type Mode int

// Sync modes.
const (
	// Check plans only: drift is reported, nothing changes.
	Check Mode = iota
	// Deploy applies the plan of a commit newer than the applied one.
	Deploy
	// Heal applies the plan of the applied commit: a drift repair.
	Heal
)

// ErrNotDescendant is wrapped by Config.Ancestry's error when the tip does
// not descend from the applied commit.
var ErrNotDescendant = errors.New("not a descendant of the applied commit")

// ErrTransient matches (errors.Is) errors marked by Transient.
var ErrTransient = errors.New("transient")

type transient struct{ error }

func (e transient) Unwrap() error      { return e.error }
func (transient) Is(target error) bool { return target == ErrTransient }

// Transient marks err as transient (git or Docker unreachable): the agent
// retries it with backoff instead of marking the commit failed. The text of
// err is unchanged. Transient(nil) is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transient{err}
}

// ErrWait matches (errors.Is) errors marked by Wait.
var ErrWait = errors.New("waiting")

type waiting struct{ error }

func (e waiting) Unwrap() error { return e.error }
func (waiting) Is(target error) bool {
	return target == ErrWait || target == ErrTransient
}

// Wait marks err as a wait for something outside this host (its turn in a
// fleet's rollout, a halt, the coordination store): the agent asks again
// with backoff, as after a transient error, but records no attempt, since
// nothing was tried. The text of err is unchanged. Wait(nil) is nil.
func Wait(err error) error {
	if err == nil {
		return nil
	}
	return waiting{err}
}

// Agent is the loop. Make one with New, run it with Run; its HTTP handler
// (Handler) may serve while it runs.
type Agent struct {
	cfg     Config
	log     *zap.Logger
	trigger chan string

	mu sync.Mutex
	st Status
	// failed holds commits that failed or were refused: never retried.
	failed map[string]string
	// rewritten holds tips refused because they do not descend from the
	// applied commit, with that applied commit: refused once, then waiting
	// for the operator (AllowRewrite) or a tip that descends again.
	rewritten map[string]string
	// fetchErr, deployErr and healErr make up readiness.
	fetchErr, deployErr, healErr error
	// waitedFor is the commit whose last try waited (st.Waiting says
	// why): its next tries log only a new reason.
	waitedFor string
}

// Status is the agent's state as /status reports it.
type Status struct {
	Env           string    `json:"env"`
	DesiredCommit string    `json:"desiredCommit"`
	AppliedCommit string    `json:"appliedCommit"`
	Ready         bool      `json:"ready"`
	LastError     string    `json:"lastError,omitempty"`
	FailedCommit  string    `json:"failedCommit,omitempty"`
	LastSync      time.Time `json:"lastSync,omitzero"`
	ObservedAt    time.Time `json:"observedAt,omitzero"`
	// Drift lists the changes the last drift check found (and repaired,
	// unless the agent runs with --no-heal).
	Drift    []string  `json:"drift,omitempty"`
	Services []Service `json:"services"`
	// Waiting is why the desired commit is not deployed yet, when it
	// waits for something outside the host (its turn in the fleet).
	Waiting string `json:"waiting,omitempty"`
	// Fleet is the host's view of its fleet (Config.Fleet).
	Fleet any `json:"fleet,omitempty"`

	applied Revision
}

// New makes an agent from cfg.
func New(cfg Config) *Agent {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = cfg.Interval
	}
	a := &Agent{cfg: cfg, log: cfg.Log, trigger: make(chan string, 1), failed: map[string]string{},
		rewritten: map[string]string{},
		st:        Status{Env: cfg.Env, Services: []Service{}}}
	cfg.Metrics.init(cfg.Env)
	a.seed(cfg.Past)
	a.fetchErr = errors.New("no sync yet")
	a.publishReady()
	return a
}

// seed restores the applied commit and the failed ones from the history.
func (a *Agent) seed(past []history.Record) {
	for _, r := range past {
		if r.Env != a.cfg.Env {
			continue
		}
		switch r.Result {
		case resultSucceeded:
			a.st.applied = Revision{Hash: r.Commit, Author: r.Author, Message: r.Message}
			delete(a.failed, r.Commit)
		case resultFailed, resultRefused:
			if r.Result == resultRefused && strings.Contains(r.Error, ErrNotDescendant.Error()) {
				// Refused for where it sits, not for what it is: with
				// AllowRewrite it deploys, else it stays refused.
				if !a.cfg.AllowRewrite {
					a.rewritten[r.Commit] = a.st.applied.Hash
				}
				continue
			}
			// A heal that failed does not make its commit a failed deploy.
			if r.Trigger != TriggerHeal {
				a.failed[r.Commit] = r.Error
			}
		}
	}
	a.st.AppliedCommit = a.st.applied.Hash
	if a.st.applied.Hash != "" {
		a.cfg.Metrics.AppliedCommit.WithLabelValues(a.cfg.Env, a.st.applied.Hash).Set(1)
	}
}

// Trigger asks for a fetch now (a webhook). It never blocks: triggers that
// arrive while one is pending are merged.
func (a *Agent) Trigger(reason string) {
	select {
	case a.trigger <- reason:
	default:
	}
}

// Run fetches at once, then every Interval (or on Trigger), and checks
// drift every HealInterval, until ctx is cancelled. A deploy in progress
// when ctx is cancelled stops at a safe point (see Config.Sync) and is
// recorded as interrupted; Run then returns nil.
func (a *Agent) Run(ctx context.Context) error {
	poll := time.NewTimer(0)
	defer poll.Stop()
	var healC <-chan time.Time
	if a.cfg.HealInterval > 0 {
		heal := time.NewTicker(a.cfg.HealInterval)
		defer heal.Stop()
		healC = heal.C
	}
	trigger, backoff := TriggerStart, time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		case trigger = <-a.trigger:
			poll.Stop()
		case <-healC:
			a.heal(ctx)
			a.idle()
			continue
		}
		err := a.sync(ctx, trigger)
		if ctx.Err() != nil {
			return nil
		}
		a.idle()
		next := jitter(a.cfg.Interval)
		if errors.Is(err, ErrTransient) {
			backoff = min(max(2*backoff, time.Second), a.cfg.MaxBackoff)
			next = backoff
			a.log.Info("retrying after a transient error", zap.Duration("in", backoff))
		} else {
			backoff = 0
		}
		trigger = TriggerPoll
		poll.Reset(next)
	}
}

func (a *Agent) idle() {
	if a.cfg.Idle != nil {
		a.cfg.Idle()
	}
}

// jitter spreads d by ±10% so that agents on many hosts do not poll in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return d - d/10 + rand.N(d/5+1)
}

// sync fetches the tip and deploys it when it is new. It returns an error
// only to tell Run to back off (transient).
func (a *Agent) sync(ctx context.Context, trigger string) error {
	m, env := a.cfg.Metrics, a.cfg.Env
	start := time.Now()
	rev, err := a.cfg.Fetch(ctx)
	m.GitFetchDuration.WithLabelValues(env).Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		m.GitFetchErrors.WithLabelValues(env).Inc()
		a.log.Warn("git fetch failed", zap.Error(err))
		a.setErr(&a.fetchErr, err)
		return Transient(err)
	}
	m.LastSuccessfulFetch.WithLabelValues(env).SetToCurrentTime()
	a.setErr(&a.fetchErr, nil)
	a.mu.Lock()
	a.st.DesiredCommit, a.st.LastSync = rev.Hash, time.Now()
	applied := a.st.applied.Hash
	reason, failed := a.failed[rev.Hash]
	refusedOver, rewritten := a.rewritten[rev.Hash]
	a.mu.Unlock()

	switch {
	case rev.Hash == applied:
		a.setErr(&a.deployErr, nil)
		if trigger == TriggerStart {
			// A stop may have left leftovers (a drain cut short): converge
			// the applied commit once at start, as a drift check would.
			a.heal(ctx)
		}
		return nil
	case failed:
		a.log.Debug("commit failed before; waiting for a newer one", zap.String("commit", state.ShortHash(rev.Hash)))
		a.setErr(&a.deployErr, fmt.Errorf("commit %s failed: %s", state.ShortHash(rev.Hash), reason))
		return nil
	case rewritten && refusedOver == applied && !a.cfg.AllowRewrite:
		a.log.Debug("tip does not descend from the applied commit; waiting for the operator", zap.String("commit", state.ShortHash(rev.Hash)))
		a.mu.Lock()
		a.st.FailedCommit = rev.Hash
		a.mu.Unlock()
		a.setErr(&a.deployErr, fmt.Errorf("commit %s refused: %w %s; %s", state.ShortHash(rev.Hash), ErrNotDescendant, state.ShortHash(applied), rewriteHint))
		return nil
	}
	return a.deploy(ctx, rev, applied, trigger)
}

// rewriteHint tells the operator how to deploy a tip that does not descend
// from the applied commit.
const rewriteHint = "deploying it needs an operator: restart the agent with --allow-rewrite, or push a commit that descends from the applied one"

// deploy checks where rev sits (Ancestry), verifies, plans and applies it,
// and records the attempt. applied is the applied commit's hash.
func (a *Agent) deploy(ctx context.Context, rev Revision, applied, trigger string) error {
	m, env := a.cfg.Metrics, a.cfg.Env
	rec := history.Record{Env: env, Commit: rev.Hash, Author: rev.Author, Message: rev.Message, Trigger: trigger, Start: time.Now().UTC()}
	log := a.log.With(zap.String("commit", state.ShortHash(rev.Hash)), zap.String("trigger", trigger))
	refuse := func(err error, msg string) {
		rec.End, rec.Result, rec.Error = time.Now().UTC(), resultRefused, err.Error()
		a.record(rec)
		m.Deployments.WithLabelValues(env, resultRefused).Inc()
		log.Error(msg, zap.Error(err))
		a.mu.Lock()
		appliedRev := a.st.applied
		a.mu.Unlock()
		if a.cfg.Refused != nil {
			a.cfg.Refused(context.WithoutCancel(ctx), appliedRev, rev, err)
		}
	}

	// The commits to verify: those between the applied one and the tip.
	between := []Revision{rev}
	if applied != "" && a.cfg.Ancestry != nil {
		revs, err := a.cfg.Ancestry(ctx, applied, rev.Hash)
		switch {
		case errors.Is(err, ErrNotDescendant) && a.cfg.AllowRewrite:
			log.Warn("the tip does not descend from the applied commit; deploying it (--allow-rewrite)", zap.String("applied", state.ShortHash(applied)), zap.Error(err))
		case errors.Is(err, ErrNotDescendant):
			err = fmt.Errorf("commit %s refused: %w; %s", state.ShortHash(rev.Hash), err, rewriteHint)
			refuse(err, "commit refused: the branch was rewritten or an older commit pushed again; nothing changed")
			a.mu.Lock()
			a.rewritten[rev.Hash] = applied
			a.st.FailedCommit = rev.Hash
			a.mu.Unlock()
			a.setErr(&a.deployErr, err)
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			err = Transient(fmt.Errorf("history between %s and %s: %w", state.ShortHash(applied), state.ShortHash(rev.Hash), err))
			a.setErr(&a.deployErr, err)
			log.Warn("could not read the history under the tip; retrying", zap.Error(err))
			return err
		case len(revs) > 0:
			between = revs
		}
	}

	if a.cfg.Verify != nil {
		for _, c := range between {
			err := a.cfg.Verify(ctx, c)
			if err == nil {
				continue
			}
			if c.Hash != rev.Hash {
				err = fmt.Errorf("commit %s under the tip: %w", state.ShortHash(c.Hash), err)
			}
			m.SignatureRefusals.WithLabelValues(env).Inc()
			refuse(err, "commit refused: signature verification failed; nothing changed")
			a.markFailed(rev.Hash, err)
			return nil
		}
	}

	if a.cfg.RequireCI != nil {
		if err := a.cfg.RequireCI(ctx, rev); err != nil {
			if errors.Is(err, ErrTransient) {
				a.setErr(&a.deployErr, err)
				log.Info("waiting for the commit's required checks", zap.Error(err))
				return err
			}
			refuse(err, "commit refused: its required checks did not pass; nothing changed")
			a.markFailed(rev.Hash, err)
			return nil
		}
	}

	// A commit that waits (its turn in a fleet) is tried at every poll:
	// "deploying" and "not deploying yet" are said once, then only a new
	// reason to wait (the fleet logs when it takes the rollout lease).
	a.mu.Lock()
	waited := ""
	if a.waitedFor == rev.Hash {
		waited = a.st.Waiting
	}
	a.mu.Unlock()
	if waited == "" {
		log.Info("deploying", zap.String("author", rev.Author), zap.String("message", rev.Message))
	}
	out, err := a.cfg.Sync(ctx, rev, Deploy)
	if errors.Is(err, ErrWait) {
		// Nothing was tried: no record, the readiness stays.
		a.mu.Lock()
		a.st.Waiting, a.waitedFor = err.Error(), rev.Hash
		a.mu.Unlock()
		if err.Error() != waited {
			log.Info("not deploying yet", zap.Error(err))
		}
		return err
	}
	a.mu.Lock()
	a.st.Waiting, a.waitedFor = "", ""
	a.mu.Unlock()
	rec.End, rec.Steps = time.Now().UTC(), out.Changes
	rec.Requests, rec.Errors, rec.StreamsCut = out.Requests, out.Errors, out.StreamsCut
	a.observed(out)
	if len(out.Changes) > 0 {
		m.DeploymentDuration.WithLabelValues(env).Observe(rec.End.Sub(rec.Start).Seconds())
	}
	if errors.Is(err, reconciler.ErrRolledBack) {
		rec.RolledBack = true
		m.Rollbacks.WithLabelValues(env).Inc()
	}
	switch {
	case err == nil:
		rec.Result = resultSucceeded
	case ctx.Err() != nil:
		rec.Result, rec.Error = resultInterrupted, err.Error()
	case errors.Is(err, ErrTransient):
		rec.Result, rec.Error = resultTransient, err.Error()
	default:
		rec.Result, rec.Error = resultFailed, err.Error()
	}
	// The attempt is counted and recorded before /status and readiness
	// say its outcome: whoever sees the commit applied (or failed) there
	// finds it in the history and the metrics too.
	m.Deployments.WithLabelValues(env, rec.Result).Inc()
	a.record(rec)
	switch rec.Result {
	case resultSucceeded:
		a.mu.Lock()
		old := a.st.applied.Hash
		a.st.applied, a.st.AppliedCommit, a.st.FailedCommit = rev, rev.Hash, ""
		a.mu.Unlock()
		if old != "" && old != rev.Hash {
			m.AppliedCommit.DeleteLabelValues(env, old)
		}
		m.AppliedCommit.WithLabelValues(env, rev.Hash).Set(1)
		a.setErr(&a.deployErr, nil)
		log.Info("deployed", zap.Int("changes", len(out.Changes)), zap.Duration("took", rec.End.Sub(rec.Start).Round(time.Millisecond)))
	case resultInterrupted:
		log.Warn("deploy interrupted by shutdown at a safe point; the next start resumes it", zap.Error(err))
	case resultTransient:
		a.setErr(&a.deployErr, err)
		log.Warn("deploy could not run; retrying", zap.Error(err))
		return err
	default:
		a.markFailed(rev.Hash, err)
		log.Error("deploy failed; this commit is not retried, a newer one will be", zap.Error(err))
	}
	return nil
}

// heal converges the host to the applied commit (or, without Repair,
// reports the drift).
func (a *Agent) heal(ctx context.Context) {
	a.mu.Lock()
	rev := a.st.applied
	a.mu.Unlock()
	if rev.Hash == "" {
		return
	}
	m, env := a.cfg.Metrics, a.cfg.Env
	start := time.Now().UTC()
	mode := Check
	if a.cfg.Repair {
		mode = Heal
	}
	out, err := a.cfg.Sync(ctx, rev, mode)
	a.observed(out)
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	a.st.Drift = out.Changes
	a.mu.Unlock()
	if !a.cfg.Repair {
		m.DriftDetected.WithLabelValues(env).Set(float64(len(out.Changes)))
		for _, c := range out.Changes {
			a.log.Warn("drift (not repaired: --no-heal)", zap.String("change", c))
		}
		a.setErr(&a.healErr, Transient(err))
		if err != nil {
			a.log.Warn("drift check failed", zap.Error(err))
		}
		return
	}
	if len(out.Changes) == 0 && err == nil {
		a.setErr(&a.healErr, nil)
		return
	}
	if errors.Is(err, ErrTransient) {
		a.log.Warn("drift check failed", zap.Error(err))
		a.setErr(&a.healErr, err)
		return
	}
	rec := history.Record{Env: env, Commit: rev.Hash, Author: rev.Author, Message: rev.Message, Trigger: TriggerHeal,
		Start: start, End: time.Now().UTC(), Result: resultSucceeded, Steps: out.Changes, Requests: out.Requests, Errors: out.Errors, StreamsCut: out.StreamsCut}
	if errors.Is(err, reconciler.ErrRolledBack) {
		rec.RolledBack = true
		m.Rollbacks.WithLabelValues(env).Inc()
	}
	if err != nil {
		rec.Result, rec.Error = resultFailed, err.Error()
		a.log.Error("drift repair failed", zap.Error(err))
	} else {
		m.DriftRepairs.WithLabelValues(env).Add(float64(len(out.Changes)))
		for _, c := range out.Changes {
			a.log.Warn("repaired drift", zap.String("commit", state.ShortHash(rev.Hash)), zap.String("change", c))
		}
	}
	a.setErr(&a.healErr, err)
	a.record(rec)
}

func (a *Agent) markFailed(hash string, err error) {
	a.mu.Lock()
	a.failed[hash] = err.Error()
	a.st.FailedCommit = hash
	a.mu.Unlock()
	a.setErr(&a.deployErr, err)
}

func (a *Agent) observed(out Outcome) {
	if m, env := a.cfg.Metrics, a.cfg.Env; m != nil {
		m.DeployRequests.WithLabelValues(env).Add(float64(out.Requests))
		m.DeployErrors.WithLabelValues(env).Add(float64(out.Errors))
		m.StreamsCut.WithLabelValues(env).Add(float64(out.StreamsCut))
		if out.Services != nil {
			m.CrashLooping.WithLabelValues(env).Set(float64(len(out.CrashLooping)))
			m.UnhealthySites.WithLabelValues(env).Set(float64(len(out.UnhealthySites)))
		}
	}
	if out.Services == nil {
		return
	}
	a.mu.Lock()
	a.st.Services, a.st.ObservedAt = out.Services, time.Now()
	a.mu.Unlock()
}

func (a *Agent) record(r history.Record) {
	if a.cfg.History == nil {
		return
	}
	if err := a.cfg.History.Append(r); err != nil {
		a.log.Error("history not recorded", zap.Error(err))
	}
}

// setErr sets one of the readiness errors and republishes readiness.
func (a *Agent) setErr(slot *error, err error) {
	a.mu.Lock()
	*slot = err
	a.mu.Unlock()
	a.publishReady()
}

func (a *Agent) publishReady() {
	a.mu.Lock()
	err := errors.Join(a.fetchErr, a.deployErr, a.healErr)
	a.st.Ready = err == nil
	a.st.LastError = ""
	if err != nil {
		a.st.LastError = err.Error()
	}
	ready := a.st.Ready
	a.mu.Unlock()
	v := 0.0
	if ready {
		v = 1
	}
	a.cfg.Metrics.Ready.WithLabelValues(a.cfg.Env).Set(v)
}

// Status returns a copy of the agent's state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.st
	s.Services = append([]Service{}, a.st.Services...)
	s.Drift = append([]string(nil), a.st.Drift...)
	if a.cfg.Fleet != nil {
		s.Fleet = a.cfg.Fleet()
	}
	return s
}
