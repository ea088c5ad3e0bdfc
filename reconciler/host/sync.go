package host

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// Mirror is the agent's copy of the desired-state branch.
type Mirror interface {
	// Fetch updates the mirror and returns the branch tip.
	Fetch(ctx context.Context) (Source, error)
	// Commit returns a commit of the mirror by hash.
	Commit(hash string) (Source, error)
}

// Notifier delivers deploy events and is closed when the sync ends
// (notify.Notifier).
type Notifier interface {
	reconciler.Notifier
	// Close waits up to timeout for deliveries under way.
	Close(timeout time.Duration)
}

// Syncer is the agent's pipeline for one environment (agent.Config's Fetch
// and Sync): the commit from the mirror, load, resolve, observe, diff and,
// as the agent says, deploy or repair, under the env's apply lock.
type Syncer struct {
	Env    string
	Mirror Mirror
	Dir    *statedir.Dir
	// LockTimeout is how long a sync waits for a manual apply of the env.
	LockTimeout time.Duration
	// Open connects to the engine (reusing a connection between syncs) and
	// wires the host for e.
	Open func(ctx context.Context, e *state.Env) (*Host, error)
	// Down reports whether the engine does not answer; the next Open then
	// reconnects. An error seen while the engine is down is transient.
	Down func(ctx context.Context) bool
	// Checks builds the pre-deploy checks; nil skips them.
	Checks func(ctx context.Context, h *Host, e *state.Env) (Checks, error)
	// Notifier returns the receivers of an env's events.
	Notifier func(targets []state.Notify) Notifier
	// Cloud gives the cloud APIs of the deploy; nil when none is configured.
	Cloud Cloud
	Log   *zap.Logger

	// looping are the crash-looping containers already reported, by ID.
	looping map[string]bool
	// unhealthy are the unhealthy sites already reported, by service and
	// reason.
	unhealthy map[string]bool
	// planned is the commit last planned and its resolved notify targets.
	planned struct {
		commit  string
		targets []state.Notify
	}
}

// Fetch implements agent.Config.Fetch.
func (s *Syncer) Fetch(ctx context.Context) (agent.Revision, error) {
	c, err := s.Mirror.Fetch(ctx)
	if err != nil {
		return agent.Revision{}, err
	}
	return agent.Revision{Hash: c.Hash, Author: c.Author, Message: c.Message}, nil
}

// Sync implements agent.Config.Sync. Bad input (validation, a missing
// file, a plan error) fails the commit; an unreachable engine or a held
// lock is transient. A Heal is announced as drift.repaired, not as a
// deploy.
func (s *Syncer) Sync(ctx context.Context, rev agent.Revision, mode agent.Mode) (agent.Outcome, error) {
	var out agent.Outcome
	src, err := s.Mirror.Commit(rev.Hash)
	if err != nil {
		return out, agent.Transient(err)
	}
	e, err := state.Load(src.FS, s.Env)
	if err != nil {
		return out, ListErrors(err)
	}
	h, err := s.Open(ctx, e)
	if err != nil {
		return out, agent.Transient(err)
	}
	unlock, err := s.Dir.Lock(ctx, s.Env, "reconciler run --env "+s.Env, s.LockTimeout)
	if err != nil {
		return out, agent.Transient(err)
	}
	defer unlock()
	if mode != agent.Check {
		if err := s.paused(rev.Hash); err != nil {
			return out, agent.Transient(err)
		}
	}
	pl, err := h.Plan(ctx, src, e)
	if err != nil {
		if s.Down(ctx) {
			return out, agent.Transient(err)
		}
		return out, err
	}
	p := pl.Plan
	s.planned.commit, s.planned.targets = rev.Hash, pl.Desired.Notify
	out.Services = AgentServices(pl.Observed)
	out.CrashLooping = s.crashLoops(ctx, pl.Desired, pl.Observed)
	out.Changes = p.Lines()
	if mode == agent.Deploy && p.Empty() {
		// A new commit with nothing to deploy may still change what the
		// sites' health checks probe.
		s.logSiteChecks(h.SyncSiteChecks(ctx, e, s.Cloud))
	}
	if mode == agent.Check || p.Empty() {
		out.UnhealthySites = s.unhealthySites(ctx, h, e, pl.Desired, pl.Observed)
		return out, nil
	}
	p.Author, p.Message = rev.Author, rev.Message // the mirror's view of the commit
	opts := DeployOptions{Cloud: s.Cloud, Log: s.Log.Named("apply").With(zap.String("commit", state.ShortHash(rev.Hash)))}
	if s.Checks != nil {
		if opts.Checks, err = s.Checks(ctx, h, e); err != nil {
			return out, err
		}
	}
	n := s.Notifier(pl.Desired.Notify)
	defer n.Close(15 * time.Second)
	if mode == agent.Deploy {
		opts.Notifier = n
	}
	res, err := h.Deploy(ctx, pl, opts)
	out.Requests, out.Errors = res.Traffic.Requests, res.Traffic.Errors
	out.StreamsCut = res.StreamsCut
	if res.BackedUp != "" {
		s.Log.Info("backed up before the deploy", zap.String("to", res.BackedUp))
	}
	if err == nil {
		if mode == agent.Heal {
			ev := p.Event(state.EventDriftRepaired)
			ev.Services = nil // every repaired subject, not only replaced services
			for _, c := range p.Changes {
				if len(c.Services) > 0 { // an atomic release: its services
					ev.Services = append(ev.Services, c.Services...)
					continue
				}
				ev.Services = append(ev.Services, reconciler.EventService{Name: c.Subject})
			}
			n.Notify(context.WithoutCancel(ctx), ev)
		}
		s.logSiteChecks(res.SiteChecks, nil)
		for _, l := range res.Records {
			s.Log.Info("route53 record set changed", zap.String("change", l))
		}
		for _, w := range res.Warnings { // best-effort steps that failed: the deploy stands
			s.Log.Warn("deploy warning", zap.String("warning", w))
		}
		if len(res.Pruned.Removed) > 0 {
			s.Log.Info("pruned images", zap.Int("removed", len(res.Pruned.Removed)), zap.Int64("freedBytes", res.Pruned.Freed))
		}
	}
	var after *state.Observed
	if ctx.Err() == nil {
		// The host as the deploy left it; after a deploy that worked, also
		// its confirmation: the same desired state plans to nothing.
		var cerr error
		after, cerr = h.confirm(ctx, pl)
		if err == nil {
			err = cerr
		}
	}
	if err != nil && ctx.Err() == nil && s.Down(ctx) {
		err = agent.Transient(err)
	}
	if after != nil {
		out.Services = AgentServices(after)
		out.UnhealthySites = s.unhealthySites(ctx, h, e, pl.Desired, after)
	}
	return out, err
}

// Refused implements agent.Config.Refused: it announces deploy.refused to
// the notify receivers of the applied commit (those of the refused commit
// are not trusted: it was refused). Before a first deploy there are none,
// and nothing is sent. A delivery that fails is logged by the notifier.
func (s *Syncer) Refused(ctx context.Context, applied, rev agent.Revision, reason error) {
	if applied.Hash == "" {
		return
	}
	if s.planned.commit != applied.Hash {
		// Plan the applied commit (it changes nothing) for its receivers.
		if _, err := s.Sync(ctx, applied, agent.Check); err != nil || s.planned.commit != applied.Hash {
			s.Log.Warn("deploy.refused not sent: the applied commit's receivers are unknown", zap.Error(err))
			return
		}
	}
	n := s.Notifier(s.planned.targets)
	n.Notify(context.WithoutCancel(ctx), reconciler.Event{Name: state.EventDeployRefused, Env: s.Env, Commit: rev.Hash,
		Author: rev.Author, Message: rev.Message, Error: reason.Error()})
	n.Close(15 * time.Second)
}

// logSiteChecks logs what SyncSiteChecks did.
func (s *Syncer) logSiteChecks(lines []string, err error) {
	for _, l := range lines {
		s.Log.Info(l)
	}
	if err != nil {
		s.Log.Warn("route53 health checks not in sync; the deploy stands", zap.Error(err))
	}
}

// crashLoops returns the containers that restarted CrashLoopRestarts times
// or more, and notifies container.crash_looping once for each. The engine's
// restart policy (unless-stopped) keeps restarting them with its backoff;
// a deploy replaces them.
func (s *Syncer) crashLoops(ctx context.Context, d *state.Desired, o *state.Observed) []string {
	var names []string
	var fresh []reconciler.EventService
	if s.looping == nil {
		s.looping = map[string]bool{}
	}
	for _, c := range o.Containers {
		if c.RestartCount < agent.CrashLoopRestarts {
			continue
		}
		names = append(names, c.Name)
		if !s.looping[c.ID] {
			s.looping[c.ID] = true
			fresh = append(fresh, reconciler.EventService{Name: c.Service, NewImage: c.Spec.Image})
			s.Log.Warn("container is crash-looping", zap.String("container", c.Name), zap.Int("restarts", c.RestartCount), zap.String("state", c.State))
		}
	}
	if len(fresh) > 0 {
		n := s.Notifier(d.Notify)
		n.Notify(context.WithoutCancel(ctx), reconciler.Event{Name: state.EventContainerCrashLooping, Env: d.Env, Commit: d.Commit, Services: fresh,
			Error: fmt.Sprintf("%d container(s) restarted %d or more times: %s", len(fresh), agent.CrashLoopRestarts, strings.Join(names, ", "))})
		n.Close(15 * time.Second)
	}
	return names
}

// unhealthySites asks nginx about every site of e (Host.SiteRoutes) and
// returns those it routes otherwise than their marker says, or that answer
// 5xx through nginx while their live container passes its health check:
// drift the plan could not repair (the files are right; nginx does not
// follow them). Each is notified as site.unhealthy once, until it is
// healthy again.
func (s *Syncer) unhealthySites(ctx context.Context, h *Host, e *state.Env, d *state.Desired, o *state.Observed) []string {
	if s.unhealthy == nil {
		s.unhealthy = map[string]bool{}
	}
	var names, reasons []string
	var fresh []reconciler.EventService
	seen := map[string]bool{}
	for _, r := range h.SiteRoutes(ctx, e, o) {
		why, kind := "", "route"
		switch {
		case r.Mismatch:
			why = fmt.Sprintf("%s: nginx routes to %s, its marker says %s (nginx's workers do not see %s? run reconciler check)", r.Service, r.Routed, r.Marker, d.Nginx.ConfDir)
		case r.Status >= 500:
			live := o.Live(r.Service)
			svc := e.Services[r.Service]
			if live == nil || !live.Running() || live.HostPort == 0 || h.Prober.Check(ctx, live.HostPort, svc.Health.Path, svc.Health.Timeout.D()) != nil {
				continue // the container's own health is another report
			}
			kind = "5xx"
			why = fmt.Sprintf("%s: answers %d through nginx while its live container %s is healthy", r.Service, r.Status, live.Name)
		default:
			continue
		}
		names = append(names, r.Service)
		reasons = append(reasons, why)
		key := r.Service + " " + kind
		seen[key] = true
		if !s.unhealthy[key] {
			s.unhealthy[key] = true
			fresh = append(fresh, reconciler.EventService{Name: r.Service})
			s.Log.Warn("site unhealthy", zap.String("site", r.Service), zap.String("why", why))
		}
	}
	for k := range s.unhealthy {
		if !seen[k] {
			delete(s.unhealthy, k)
		}
	}
	if len(fresh) > 0 {
		n := s.Notifier(d.Notify)
		n.Notify(context.WithoutCancel(ctx), reconciler.Event{Name: state.EventSiteUnhealthy, Env: d.Env, Commit: d.Commit, Services: fresh,
			Error: strings.Join(reasons, "; ")})
		n.Close(15 * time.Second)
	}
	return names
}

// AgentServices is the observed containers for the agent's /status, each
// marked live by the one rule (state.Observed.Live), workers included.
func AgentServices(o *state.Observed) []agent.Service {
	out := []agent.Service{}
	for _, c := range o.Containers {
		live := o.Live(c.Service)
		out = append(out, agent.Service{Service: c.Service, Container: c.Name, Color: string(c.Color), State: c.State,
			Image: c.Spec.Image, Commit: c.Commit, Live: live != nil && live.Name == c.Name})
	}
	return out
}
