package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// ActTogether runs its Steps at once and fails when any of them fails
// (the others are then stopped): the health waits, the bake and the
// drains of an atomic release.
const ActTogether Action = "together"

// releaseSubject is the Subject of an atomic release's change.
const releaseSubject = "release"

// atomic merges the service replacements among changes (the Replace
// changes the per-service planner made) into one Release change when
// there are two or more, in the order of release: atomic:
//
//  1. every service's leftover removal and start, then all health waits
//     together, then the nginx files that change;
//  2. every switch (each verified through nginx), then every name move,
//     then every smoke check;
//  3. all bakes together;
//  4. (traffic stays from here on) the Route 53 updates, then all drains
//     together.
//
// A failure in 1-3 runs the change's Undo: every service's traffic and
// name back to its old color (each verified as in the per-service undo),
// then every new container and new nginx file removed. The other changes
// keep their place; the release takes the place of the first service it
// replaces.
//
// A service the deploy creates (new, or whose containers are gone) has no
// version to switch back to and keeps its own change, in its place:
// started, healthy and named before the services that depend on it
// (dependsOn), as on a per-service first deploy.
func (pl *planner) atomic(changes []Change) ([]Change, error) {
	var members []Change
	first := -1
	for i, c := range changes {
		if c.Kind == Replace {
			if first < 0 {
				first = i
			}
			members = append(members, c)
		}
	}
	if len(members) < 2 {
		return changes, nil
	}
	rel := Change{Kind: Release, Subject: releaseSubject}
	var starts, waits, writes, pins, switches, names, smokes, bakes, after, drains []Step
	var undo []Step
	var what []string
	for _, c := range members {
		what = append(what, c.Subject+" "+strings.TrimPrefix(strings.TrimPrefix(c.Summary, "replace "), "create "))
		for _, r := range c.Reasons {
			rel.Reasons = append(rel.Reasons, c.Subject+": "+r)
		}
		rel.Services = append(rel.Services, EventService{Name: c.Subject, OldImage: c.OldImage, NewImage: c.NewImage})
		for i, s := range c.Steps {
			moved := i >= c.UndoBefore
			switch {
			case s.Action == ActShift:
				return nil, fmt.Errorf("service %s: a canary cannot be part of release %q", c.Subject, state.ReleaseAtomic)
			case s.Action == ActHealthCheck:
				after = append(after, s)
			case moved && (s.Action == ActDrain || s.Action == ActRemove || s.Action == ActStop):
				drains = append(drains, s)
			case moved:
				return nil, fmt.Errorf("service %s: step %s after the switch cannot be part of release %q (internal error)", c.Subject, s, state.ReleaseAtomic)
			case s.Action == ActRemove || s.Action == ActStart:
				starts = append(starts, s)
			case s.Action == ActWaitHealthy || s.Action == ActSettle:
				waits = append(waits, s)
			case s.Action == ActWriteNginx:
				writes = append(writes, s)
			case s.Action == ActPin:
				// Sessions stay on the old color from its switch to the end
				// of its drain (a session header, issue 19).
				pins = append(pins, s)
			case s.Action == ActSwitch:
				switches = append(switches, s)
			case s.Action == ActName || s.Action == ActNameProxy || s.Action == ActAlias:
				names = append(names, s)
			case s.Action == ActSmoke:
				smokes = append(smokes, s)
			case s.Action == ActWatch:
				bakes = append(bakes, s)
			default:
				return nil, fmt.Errorf("service %s: step %s cannot be part of release %q (internal error)", c.Subject, s, state.ReleaseAtomic)
			}
		}
		first := len(undo)
		undo = append(undo, c.Undo...)
		if w := pl.restoreUpstream(c); w != nil {
			undo = append(undo, *w)
		}
		// A service whose switch back fails keeps its new color; the
		// others still go back.
		for i := first; i < len(undo); i++ {
			undo[i].UndoGroup = c.Subject
		}
	}
	rel.Summary = "switch together: " + strings.Join(what, ", ")
	rel.Steps = append(rel.Steps, starts...)
	rel.Steps = append(rel.Steps, together(waits)...)
	rel.Steps = append(rel.Steps, writes...)
	rel.Steps = append(rel.Steps, pins...)
	rel.Steps = append(rel.Steps, switches...)
	rel.Steps = append(rel.Steps, names...)
	rel.Steps = append(rel.Steps, smokes...)
	rel.Steps = append(rel.Steps, together(bakes)...)
	rel.UndoBefore = len(rel.Steps)
	rel.Steps = append(rel.Steps, after...)
	rel.Steps = append(rel.Steps, together(drains)...)
	// Traffic and names come back before anything new goes.
	slices.SortStableFunc(undo, func(a, b Step) int { return undoRank(a) - undoRank(b) })
	rel.Undo = undo

	out := make([]Change, 0, len(changes)-len(members)+1)
	for i, c := range changes {
		switch {
		case i == first:
			out = append(out, rel)
		case c.Kind == Replace:
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// restoreUpstream is the step that puts back the nginx file of an
// upstream-only service (a port, no listen) that c replaces: its switch is
// the rewrite of that file, which the per-service undo does not reverse.
// In an atomic release another service's failure can undo c after its
// rewrite, so the file the host has now is written again before the new
// color goes. Nil for any other change.
func (pl *planner) restoreUpstream(c Change) *Step {
	site := pl.site(c.Subject)
	if site == nil || slices.ContainsFunc(c.Steps, func(s Step) bool { return s.Action == ActSwitch }) ||
		!slices.ContainsFunc(c.Steps, func(s Step) bool { return s.Action == ActWriteNginx }) {
		return nil
	}
	return &Step{Action: ActWriteNginx, Target: "nginx " + state.SiteFile(pl.d.Env, c.Subject),
		Site: &SiteChange{ConfDir: pl.d.Nginx.ConfDir, Path: site.Path, Content: site.Content}}
}

// together is steps as one ActTogether step; a single step stays itself.
func together(steps []Step) []Step {
	if len(steps) < 2 {
		return steps
	}
	targets := make([]string, len(steps))
	for i, s := range steps {
		targets[i] = s.Target
	}
	return []Step{{Action: ActTogether, Target: strings.Join(targets, ","), Steps: steps}}
}

// undoRank orders an atomic release's undo: traffic back, then names
// back and the sessions unpinned, then what is new removed.
func undoRank(s Step) int {
	switch s.Action {
	case ActSwitch, ActWriteNginx:
		return 0
	case ActName, ActAlias, ActUnpin:
		return 1
	case ActRemoveNginx:
		return 2
	}
	return 3
}

// together runs s.Steps at once. The first failure cancels the others;
// the error joins every failure but the cancellations it caused.
func (a *Applier) together(ctx context.Context, p *Plan, s Step, res *Result) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  = make([]error, len(s.Steps))
		first = -1
	)
	results := make([]Result, len(s.Steps))
	for i, sub := range s.Steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.step(ctx, p, sub, &results[i])
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			errs[i] = fmt.Errorf("%s: %w", sub, err)
			if first < 0 {
				first = i
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, r := range results {
		res.Warnings = append(res.Warnings, r.Warnings...)
		for svc, t := range r.Watched {
			res.watched(svc, t)
		}
	}
	if first < 0 {
		return nil
	}
	// The steps the first failure cancelled failed for that reason only.
	out := []error{errs[first]}
	for i, err := range errs {
		if i != first && err != nil && !errors.Is(err, context.Canceled) {
			out = append(out, err)
		}
	}
	return errors.Join(out...)
}

// undoTimeout bounds a change's undo: a container stop (StopTimeout) or
// a traffic move per step, and never less than two stops, so that an
// atomic release's undo of several services has the time of all of them.
func undoTimeout(undo []Step) time.Duration {
	return time.Duration(max(2, len(undo)+1)) * StopTimeout
}

// Flatten is steps with the steps of each ActTogether step in its place,
// in order: for a reader of a plan that looks for steps of one kind (the
// watches, the starts) wherever they run.
func Flatten(steps []Step) []Step {
	var out []Step
	for _, s := range steps {
		if s.Action == ActTogether {
			out = append(out, Flatten(s.Steps)...)
			continue
		}
		out = append(out, s)
	}
	return out
}
