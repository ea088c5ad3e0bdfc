package reconciler

import (
	"errors"
	"fmt"
	"slices"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// ErrNothingToRollBack is returned by Rollback when no service has a
// previous release kept to go back to.
var ErrNothingToRollBack = errors.New("nothing to roll back")

// Rollback plans the emergency rollback of d's environment: the release
// that runs now (the commit of the live container started last among the
// services whose previous release is kept, see Kept) goes back to that
// previous release. For each such service whose live container runs at
// that commit: resume the kept container, check its health (settle, for a
// worker), move traffic and the service's name back to it, verified, then
// drain the current color and stop it, kept in turn (a second rollback
// goes forward again). The migrations that release ran are undone first
// (see migrationsRollback), before any older service starts. It is pure:
// d gives the health, nginx and name settings, o the containers, sites
// and records.
//
// The plan's Commit is the previous release's commit, its Notes say which
// release goes and which comes back. A failure before a service's traffic
// moved stops its resumed container again: the current release keeps
// serving.
func Rollback(d *state.Desired, o *state.Observed, key []byte) (*RollbackPlan, error) {
	pl := planner{d: d, o: o, key: key, used: usedPorts(o)}
	type cand struct {
		sv       *onHost
		cur, old *state.Container
	}
	var cands []cand
	for _, s := range d.Services {
		sv := &onHost{DesiredService: s, byColor: map[state.Color]*state.Container{}}
		for i := range o.Containers {
			if c := &o.Containers[i]; c.Service == s.Name {
				sv.byColor[c.Color] = c
			}
		}
		cur := o.Live(s.Name)
		if cur == nil || !cur.Running() {
			continue
		}
		old := sv.byColor[cur.Color.Other()]
		if !Kept(old) {
			continue
		}
		sv.site, sv.liveC, sv.live = pl.site(s.Name), cur, cur.Color
		if s.HasPort() {
			sv.blue, sv.green = pl.ports(s.Name, sv.site, sv.byColor)
		}
		cands = append(cands, cand{sv: sv, cur: cur, old: old})
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w in env %s: no service has a previous release kept (a stopped color beside the live one, kept after a drain until the next release; prune --previous removes them)", ErrNothingToRollBack, d.Env)
	}
	// The release that goes is the one started last.
	release := cands[0].cur
	for _, c := range cands[1:] {
		if c.cur.StartedAt.After(release.StartedAt) {
			release = c.cur
		}
	}
	p := &Plan{Env: d.Env}
	if mc, err := pl.migrationsRollback(release.Commit); err != nil {
		return nil, err
	} else if mc != nil {
		p.Changes = append(p.Changes, *mc)
	}
	for _, c := range cands {
		if c.cur.Commit != release.Commit {
			p.Notes = append(p.Notes, fmt.Sprintf("%s: stays on %s (%s): its live container is not of release %s", c.sv.Name, c.cur.Color, state.ShortHash(c.cur.Commit), state.ShortHash(release.Commit)))
			continue
		}
		ch, err := pl.rollbackService(c.sv, c.cur, c.old)
		if err != nil {
			return nil, err
		}
		p.Changes = append(p.Changes, *ch)
		if p.Commit == "" {
			p.Commit = c.old.Commit
		}
	}
	p.Notes = append([]string{fmt.Sprintf("rollback: release %s goes, the previous release %s comes back", state.ShortHash(release.Commit), state.ShortHash(p.Commit))}, p.Notes...)
	return &RollbackPlan{Plan: p, Release: release.Commit}, nil
}

// RollbackPlan is a rollback's plan (whose Commit is the previous
// release's) and the commit of the release it rolls back.
type RollbackPlan struct {
	*Plan
	Release string
}

// rollbackService is the change that brings sv back to its kept container
// old and stops cur, the live one.
func (pl *planner) rollbackService(sv *onHost, cur, old *state.Container) (*Change, error) {
	env := pl.d.Env
	oldT, curT := sv.Name+"/"+string(old.Color), sv.Name+"/"+string(cur.Color)
	c := &Change{Kind: Replace, Subject: sv.Name, Summary: fmt.Sprintf("roll back %s → %s", cur.Color, old.Color),
		Reasons:  []string{fmt.Sprintf("previous release %s (%s, commit %s) is kept", old.Name, old.Spec.Image, state.ShortHash(old.Commit))},
		OldImage: cur.Spec.Image, NewImage: old.Spec.Image}
	c.Steps = append(c.Steps, Step{Action: ActResume, Target: oldT, Name: old.Name})
	if !sv.HasPort() {
		c.Steps = append(c.Steps, Step{Action: ActSettle, Target: oldT, Name: old.Name, Health: &sv.Health})
		if n := pl.d.Network; n != "" {
			c.Steps = append(c.Steps,
				Step{Action: ActAlias, Target: oldT, Name: old.Name, Network: n, Aliases: serviceAliases(sv.Name, old.Color)},
				Step{Action: ActAlias, Target: curT, Name: cur.Name, Network: n, Aliases: []string{sv.Name + "-" + string(cur.Color)}})
			c.Undo = append(c.Undo, Step{Action: ActAlias, Target: curT, Name: cur.Name, Network: n, Aliases: serviceAliases(sv.Name, cur.Color)})
		}
		c.UndoBefore = len(c.Steps)
		c.Steps = append(c.Steps, Step{Action: ActStop, Target: curT, Name: cur.Name})
		c.Undo = append(c.Undo, Step{Action: ActStop, Target: oldT, Name: old.Name})
		return c, nil
	}
	c.Steps = append(c.Steps, Step{Action: ActWaitHealthy, Target: oldT, Name: old.Name, HostPort: old.HostPort, Health: &sv.Health})
	var names []Step
	if pl.proxied(sv.DesiredService) {
		names = pl.nameSteps(sv.DesiredService, old.Color, oldT)
	}
	hasRoute := sv.site != nil && templates.HasRoute(sv.site.Content)
	if sv.Listen != nil {
		c.Steps = append(c.Steps, Step{Action: ActSwitch, Target: oldT, Service: sv.Name, Color: old.Color,
			Site: pl.trafficSite(sv.DesiredService, state.MarkerFile(env, sv.Name), string(old.Color), hasRoute)})
		c.Undo = append(c.Undo, Step{Action: ActSwitch, Target: curT, Service: sv.Name, Color: cur.Color,
			Site: pl.trafficSite(sv.DesiredService, state.MarkerFile(env, sv.Name), string(cur.Color), hasRoute)})
	} else {
		// Upstream only: the file names the live color.
		content, err := pl.render(sv, old.Color)
		if err != nil {
			return nil, err
		}
		c.Steps = append(c.Steps, Step{Action: ActWriteNginx, Target: "nginx " + state.SiteFile(env, sv.Name), Site: pl.siteWrite(sv.DesiredService, pl.sitePath(sv.Name), content)})
	}
	c.Steps = append(c.Steps, names...)
	if slices.ContainsFunc(names, func(s Step) bool { return s.Action == ActName }) {
		c.Undo = append(c.Undo, Step{Action: ActName, Target: curT, Service: sv.Name, Color: cur.Color, NameProxy: pl.proxySpec(sv.DesiredService),
			Smoke: pl.nameCheck(sv.DesiredService, cur.Color)})
	}
	c.UndoBefore = len(c.Steps)
	c.Undo = append(c.Undo, Step{Action: ActStop, Target: oldT, Name: old.Name})
	drain := Step{Action: ActDrain, Target: curT, Name: cur.Name, Drain: sv.Drain}
	if sv.Drain <= 0 {
		drain = Step{Action: ActStop, Target: curT, Name: cur.Name}
	}
	if sv.Listen != nil {
		drain.Site = pl.trafficSite(sv.DesiredService, state.MarkerFile(env, sv.Name), string(old.Color), hasRoute)
	}
	c.Steps = append(c.Steps, drain)
	return c, nil
}
