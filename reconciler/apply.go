package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

// Journal records facts that must outlive one apply.
type Journal interface {
	// RecordMigration remembers hash as env's last successful migrations run.
	RecordMigration(env, hash string) error
	// RecordMigrationRuns replaces env's record of the migrations runs
	// applied (state.MigrationRun), oldest first.
	RecordMigrationRuns(env string, runs []state.MigrationRun) error
	// RecordSettings remembers settings (display forms by path, no secret)
	// as the env file's settings env's host runs with.
	RecordSettings(env string, settings map[string]string) error
	// RecordOwnedRecords remembers keys as the Route 53 record sets
	// reconciler wrote for env (replacing the previous record).
	RecordOwnedRecords(env string, keys []state.RecordKey) error
}

// StopTimeout is how long a container gets between SIGTERM and SIGKILL when
// it is removed.
const StopTimeout = 10 * time.Second

// loadTimeout bounds the wait for nginx to serve a file after a reload.
const loadTimeout = 10 * time.Second

// poll sends r until it gets the status it wants or d passes.
func (a *Applier) poll(ctx context.Context, r SmokeRequest, d time.Duration) error {
	deadline := a.now().Add(d)
	for {
		err := a.Prober.Smoke(ctx, r, time.Second)
		if err == nil {
			return nil
		}
		if a.now().After(deadline) {
			return fmt.Errorf("no answer from the new file within %s: %w", d, err)
		}
		if err := a.sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// RouteTimeout bounds the wait for nginx to route as a traffic move
// wants: its workers test the markers on every request, so a correct
// host answers at once; the wait only rides out a slow first request.
const RouteTimeout = 3 * time.Second

// routed asks nginx, through the site's route check, whether its workers
// route as the move of s wants, until they do or RouteTimeout passes. A
// step without a route check (an upstream-only site) passes.
func (a *Applier) routed(ctx context.Context, s Step) error {
	r := s.Site.Route
	if r == nil {
		return nil
	}
	site, _, _ := strings.Cut(s.Target, "/")
	deadline := a.now().Add(RouteTimeout)
	for {
		err := a.Prober.Smoke(ctx, *r, time.Second)
		if err == nil {
			return nil
		}
		if a.now().After(deadline) {
			return fmt.Errorf("%w: nginx does not route %s as the marker says after %s (%v); the likely cause: nginx's workers run as another user (nginx's user directive, often nobody or www-data) that cannot see %s: make %s and every directory above it readable and searchable by that user (chmod 0755 %s), then run apply again",
				ErrNotRouted, site, RouteTimeout, err, filepath.Join(s.Site.ConfDir, s.Site.Marker), s.Site.ConfDir, s.Site.ConfDir)
		}
		if err := a.sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// nameForwards runs the step's name check (s.Smoke.Exec) in the name
// proxy's container until it prints s.Smoke.WantBody, for up to
// RouteTimeout. A step without one passes.
func (a *Applier) nameForwards(ctx context.Context, s Step) error {
	return a.nameForwardsWithin(ctx, s, RouteTimeout)
}

// ProxyStartTimeout bounds the wait for a name proxy that a step created
// or started to answer its check: its process starts listening.
const ProxyStartTimeout = 10 * time.Second

// nameForwardsWithin is nameForwards with a budget of d.
func (a *Applier) nameForwardsWithin(ctx context.Context, s Step, d time.Duration) error {
	if s.Smoke == nil || len(s.Smoke.Exec) == 0 {
		return nil
	}
	deadline := a.now().Add(d)
	for {
		code, out, err := a.Runtime.Exec(ctx, s.NameProxy.Name, s.Smoke.Exec)
		got := strings.TrimSpace(out)
		if err == nil && code == 0 && got == s.Smoke.WantBody {
			return nil
		}
		if a.now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("exit code %d, answer %q", code, state.LastLines(got, 3))
			}
			return fmt.Errorf("%w: name proxy %s does not forward %s to %s after %s: %v", ErrNotRouted, s.NameProxy.Name, s.Service, s.Smoke.WantBody, d, err)
		}
		if err := a.sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// ErrNotRouted is wrapped by the error of a traffic move that nginx did
// not follow: its route check kept answering another routing.
var ErrNotRouted = errors.New("traffic did not move")

// smokeTimeout bounds one smoke request.
const smokeTimeout = 10 * time.Second

// logTail is how many log lines of a failed container go into the error.
const logTail = 20

// Applier carries out a Plan. It makes no decisions: every fact it needs is
// in the plan; it only runs the steps, undoes a change that fails before its
// traffic moved, and reports.
type Applier struct {
	Runtime Runtime
	Edge    Edge
	Prober  Prober
	Journal Journal
	// Names points services' names at a color (ActName steps); nil when
	// the plan has none.
	Names Names
	Log   *zap.Logger
	// Out receives the output of the migrations job.
	Out io.Writer
	// Notifier, when set, is told when a deploy starts, succeeds, fails or
	// rolls back, and when migrations fail.
	Notifier Notifier
	// Snapshots and HealthChecks are the cloud APIs of ActSnapshot and
	// ActHealthCheck steps; nil when the plan has none.
	Snapshots    Snapshotter
	HealthChecks HealthChecks
	// Records is the DNS API of ActRecords steps; nil when the plan has
	// none.
	Records Records
	// Clock is the time health waits, watches, drains and bakes read and
	// wait on; nil is the real clock.
	Clock Clock
	// Progress, when set, is told how pulls, health waits, watches and
	// drains go while they run; nil reports nothing.
	Progress Progress
}

// realClock is the Clock of time.Now and timers.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (a *Applier) clock() Clock {
	if a.Clock == nil {
		return realClock{}
	}
	return a.Clock
}

func (a *Applier) now() time.Time { return a.clock().Now() }

func (a *Applier) sleep(ctx context.Context, d time.Duration) error { return a.clock().Sleep(ctx, d) }

// Result is what an Apply did besides succeeding or failing. Apply returns
// it in both cases: a failed deploy may have warned and watched too.
type Result struct {
	// Warnings are the failures of best-effort steps, in the order they
	// happened; each failed without failing the deploy.
	Warnings []string
	// Watched is what the watches of each service counted in its access
	// log (summed over the service's watches: canary steps and bake),
	// whether they passed or not; a service without a watch is absent.
	Watched map[string]Traffic
	// Drained is how each drain of an old color ended, in order.
	Drained []Drained
}

// drained records how a drain ended.
func (r *Result) drained(d Drained) { r.Drained = append(r.Drained, d) }

// Cut is the number of busy connections (streams, requests in flight) the
// drains cut at their deadline.
func (r Result) Cut() int {
	n := 0
	for _, d := range r.Drained {
		n += d.Cut
	}
	return n
}

// watched adds what a watch of service counted.
func (r *Result) watched(service string, t Traffic) {
	if r.Watched == nil {
		r.Watched = map[string]Traffic{}
	}
	w := r.Watched[service]
	w.Requests += t.Requests
	w.Errors += t.Errors
	r.Watched[service] = w
}

// ErrRolledBack is matched (errors.Is) by the error of an apply whose
// failed change was undone: its traffic is on the version that served
// before, and the new container is gone.
var ErrRolledBack = errors.New("rolled back")

// RolledBackError is a failed step whose change was undone.
type RolledBackError struct {
	Step   string
	Err    error
	Undone []string
}

func (e *RolledBackError) Error() string {
	return fmt.Sprintf("%s: %v\nrolled back: %s; traffic is on the version that served before", e.Step, e.Err, strings.Join(e.Undone, ", "))
}

// Unwrap returns the step's error.
func (e *RolledBackError) Unwrap() error { return e.Err }

// Is reports whether target is ErrRolledBack.
func (e *RolledBackError) Is(target error) bool { return target == ErrRolledBack }

// Apply runs every change of p in order and stops at the first failure. A
// change that fails before its traffic switch is undone (the new container
// is removed; the live one was never touched) and its error says so; the
// changes that succeeded before it are compensated, latest first. The
// Result is valid whether or not Apply failed. An Applier holds no state
// of an Apply: it may run several, one after the other.
func (a *Applier) Apply(ctx context.Context, p *Plan) (Result, error) {
	var res Result
	start := a.now()
	a.notify(ctx, p, state.EventDeployStarted, start, nil, 0)
	for i, c := range p.Changes {
		a.Log.Info(fmt.Sprintf("%s %s: %s", c.Kind.Symbol(), c.Subject, c.Summary), zap.Strings("reasons", c.Reasons))
		if err := a.change(ctx, p, c, &res); err != nil {
			err = fmt.Errorf("%s %s: %w", c.Kind, c.Subject, err)
			if c.Kind == Migrate {
				// Migrations come before every service change.
				err = fmt.Errorf("%w; no service was changed", err)
			}
			if cerr := a.compensate(ctx, p, p.Changes[:i], &res); cerr != nil {
				err = fmt.Errorf("%w\n%v", err, cerr)
			}
			if c.Kind == Migrate {
				a.notify(ctx, p, state.EventMigrationFailed, start, err, res.Cut())
			}
			if errors.Is(err, ErrRolledBack) {
				a.notify(ctx, p, state.EventDeployRolledBack, start, err, res.Cut())
			}
			a.notify(ctx, p, state.EventDeployFailed, start, err, res.Cut())
			return res, err
		}
	}
	a.notify(ctx, p, state.EventDeploySucceeded, start, nil, res.Cut())
	return res, nil
}

// compensate runs, latest first, the Compensate steps of the changes that
// succeeded before a failure, with a context that a SIGTERM does not cut.
func (a *Applier) compensate(ctx context.Context, p *Plan, done []Change, res *Result) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		for _, s := range done[i].Compensate {
			a.Log.Warn("compensating: " + s.String())
			if err := a.step(ctx, p, s, res); err != nil {
				errs = append(errs, fmt.Errorf("%s failed too: %w", s, err))
				break
			}
			if s.Action == ActMigrate {
				errs = append(errs, fmt.Errorf("ran %s: the migrations of this deploy were rolled back", s.Target))
			}
		}
	}
	return errors.Join(errs...)
}

func (a *Applier) notify(ctx context.Context, p *Plan, name state.EventName, start time.Time, err error, cut int) {
	if a.Notifier == nil {
		return
	}
	e := p.Event(name)
	e.StreamsCut = cut
	if name != state.EventDeployStarted {
		e.Duration = a.now().Sub(start).Seconds()
	}
	if err != nil {
		e.Error = err.Error()
	}
	a.Notifier.Notify(context.WithoutCancel(ctx), e)
}

func (a *Applier) change(ctx context.Context, p *Plan, c Change, res *Result) error {
	for i, s := range c.Steps {
		start := a.now()
		err := a.step(ctx, p, s, res)
		if err == nil {
			a.Log.Info(s.String(), zap.Duration("took", a.now().Sub(start).Round(time.Millisecond)))
			continue
		}
		if s.BestEffort && ctx.Err() == nil {
			msg := fmt.Sprintf("%s: %v (the deploy stands)", s, err)
			a.Log.Warn(msg)
			res.Warnings = append(res.Warnings, msg)
			continue
		}
		if i >= c.UndoBefore || len(c.Undo) == 0 {
			return fmt.Errorf("%s: %w", s, err)
		}
		// Send traffic back to the old color (when it moved) and take the new
		// container away, even when ctx was cancelled (a SIGTERM must not
		// leave it behind).
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout(c.Undo))
		defer cancel()
		var undone []string
		var failed []error
		kept := map[string]bool{} // undo groups whose undo failed
		for _, u := range c.Undo {
			if u.UndoGroup != "" && kept[u.UndoGroup] {
				continue
			}
			if uerr := a.step(undoCtx, p, u, res); uerr != nil {
				where := "traffic is on the version that served before"
				if u.Action == ActSwitch {
					where = "traffic may still be on the new version"
				}
				if u.UndoGroup == "" {
					return fmt.Errorf("%s: %w\nundo %s also failed: %v\n%s; run apply again once the cause is fixed: it removes what this one left behind", s, err, u, uerr, where)
				}
				kept[u.UndoGroup] = true
				failed = append(failed, fmt.Errorf("undo %s failed: %v; %s: %s", u, uerr, u.UndoGroup, where))
				continue
			}
			undone = append(undone, u.String())
		}
		if len(failed) > 0 {
			return fmt.Errorf("%s: %w\n%v\nthe other services were put back (%s); run apply again once the cause is fixed: it removes what this one left behind", s, err, errors.Join(failed...), strings.Join(undone, ", "))
		}
		a.Log.Warn("rolled back "+c.Subject, zap.Strings("undone", undone))
		return &RolledBackError{Step: s.String(), Err: err, Undone: undone}
	}
	return nil
}

func (a *Applier) step(ctx context.Context, p *Plan, s Step, res *Result) error {
	switch s.Action {
	case ActPull:
		return a.pull(ctx, s.Image)
	case ActMigrate:
		jctx := ctx
		if t := s.Container.Timeout; t > 0 {
			var cancel context.CancelFunc
			jctx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		code, err := a.Runtime.RunJob(jctx, *s.Container, a.out())
		if err != nil {
			if errors.Is(jctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("%s did not finish within its timeout %s (migrations.timeout)", s.Target, s.Container.Timeout)
			}
			return err
		}
		if code != 0 {
			return fmt.Errorf("%s exited with code %d", s.Target, code)
		}
		return nil
	case ActRecord:
		if err := a.Journal.RecordMigration(p.Env, s.Hash); err != nil {
			return err
		}
		if s.MigrationRuns != nil {
			return a.Journal.RecordMigrationRuns(p.Env, s.MigrationRuns)
		}
		return nil
	case ActSettings:
		return a.Journal.RecordSettings(p.Env, s.Settings)
	case ActRecords:
		if a.Records == nil {
			return errors.New("no Route 53 client configured")
		}
		return a.Records.ChangeRecords(ctx, s.Records.Zone, s.Records.Changes)
	case ActOwnRecords:
		return a.Journal.RecordOwnedRecords(p.Env, s.Owned)
	case ActRemove:
		if s.Site != nil {
			if err := a.routed(ctx, s); err != nil {
				return fmt.Errorf("%w; %s keeps running", err, s.Name)
			}
		}
		return a.Runtime.Remove(ctx, s.Name, StopTimeout)
	case ActStart:
		return a.Runtime.Start(ctx, *s.Container)
	case ActWaitHealthy:
		return a.withLogs(ctx, s.Name, a.waitHealthy(ctx, s.Target, s.Name, s.HostPort, *s.Health))
	case ActSettle:
		return a.withLogs(ctx, s.Name, a.settle(ctx, s.Target, s.Name, *s.Health))
	case ActWriteNginx:
		var loaded func(context.Context) error
		if r := s.Site.Loaded; r != nil {
			loaded = func(ctx context.Context) error { return a.poll(ctx, *r, loadTimeout) }
		}
		return a.Edge.Write(ctx, s.Site.Path, s.Site.Content, loaded)
	case ActSwitch:
		if err := a.Edge.Switch(ctx, s.Site.ConfDir, p.Env, s.Service, s.Color); err != nil {
			return err
		}
		return a.routed(ctx, s)
	case ActDrain:
		if s.Site != nil {
			if err := a.routed(ctx, s); err != nil {
				return fmt.Errorf("%w; %s keeps running and is not drained", err, s.Name)
			}
		}
		a.Log.Info("draining "+s.Target, zap.Duration("for", s.Drain), zap.Duration("idle", s.DrainIdle))
		d, err := a.drainWait(ctx, s)
		if err != nil {
			return fmt.Errorf("drain interrupted; %s keeps running without traffic and is removed by the next apply: %w", s.Name, err)
		}
		res.drained(d)
		if d.Idle {
			a.Log.Info("drained "+s.Target+": idle", zap.Duration("after", d.Waited))
		} else {
			a.Log.Info("drained "+s.Target+": deadline", zap.Duration("after", d.Waited), zap.Int("cut", d.Cut))
		}
		if s.Unpin {
			// Sessions of the old color get the live color's 404 from
			// now on: the client starts a new one.
			if err := a.Edge.Pin(ctx, s.Site.ConfDir, p.Env, s.Service, ""); err != nil {
				return fmt.Errorf("%w; %s keeps running without traffic and is removed by the next apply", err, s.Name)
			}
		}
		// Stopped, not removed: the previous release stays ready for a
		// rollback (ActResume) until the next release replaces it.
		return a.Runtime.Stop(ctx, s.Name, StopTimeout)
	case ActStop:
		if s.Site != nil {
			if err := a.routed(ctx, s); err != nil {
				return fmt.Errorf("%w; %s keeps running", err, s.Name)
			}
		}
		return a.Runtime.Stop(ctx, s.Name, StopTimeout)
	case ActResume:
		return a.Runtime.Resume(ctx, s.Name)
	case ActPin:
		return a.Edge.Pin(ctx, s.Site.ConfDir, p.Env, s.Service, s.Color)
	case ActUnpin:
		return a.Edge.Pin(ctx, s.Site.ConfDir, p.Env, s.Service, "")
	case ActRemoveNginx:
		return a.Edge.Remove(ctx, s.Site.ConfDir, p.Env, s.Service)
	case ActShift:
		if err := a.Edge.Shift(ctx, s.Site.ConfDir, p.Env, s.Service, s.Color, s.Percent); err != nil {
			return err
		}
		return a.routed(ctx, s)
	case ActWatch:
		return a.withLogs(ctx, s.Name, a.watch(ctx, s, res))
	case ActTogether:
		return a.together(ctx, p, s, res)
	case ActAlias:
		return a.Runtime.Alias(ctx, s.Name, s.Network, s.Aliases)
	case ActName:
		if s.NameProxy.Dir == "" {
			return errors.New("no directory for name markers (internal error: NamesDir unset)")
		}
		if a.Names == nil {
			return errors.New("no name marker writer configured")
		}
		if err := a.Names.Point(ctx, s.NameProxy.Dir, s.Service, s.Color); err != nil {
			return err
		}
		return a.nameForwards(ctx, s)
	case ActNameProxy:
		if err := a.Runtime.EnsureNameProxy(ctx, *s.NameProxy); err != nil {
			return err
		}
		// A proxy just started may not listen yet: its check waits for it.
		return a.nameForwardsWithin(ctx, s, ProxyStartTimeout)
	case ActSnapshot:
		if a.Snapshots == nil {
			return errors.New("no snapshot API configured")
		}
		sctx := ctx
		if s.Timeout > 0 {
			var cancel context.CancelFunc
			sctx, cancel = context.WithTimeout(ctx, s.Timeout)
			defer cancel()
		}
		if err := a.Snapshots.Snapshot(sctx, s.Name, s.Snapshot); err != nil {
			// The AWS helper may stop first, with the last status it read.
			if (errors.Is(sctx.Err(), context.DeadlineExceeded) || s.Timeout > 0 && errors.Is(err, context.DeadlineExceeded)) && ctx.Err() == nil {
				return fmt.Errorf("snapshot %s of %s not available within %s (migrations.snapshot.timeout): %w; the migrations did not run", s.Snapshot, s.Name, s.Timeout, err)
			}
			return fmt.Errorf("%w; the migrations did not run", err)
		}
		a.Log.Info("snapshot available", zap.String("instance", s.Name), zap.String("snapshot", s.Snapshot))
		return nil
	case ActHealthCheck:
		if a.HealthChecks == nil {
			return errors.New("no Route 53 API configured")
		}
		changed, err := a.HealthChecks.UpdateHealthCheck(ctx, s.HealthCheck.ID, s.HealthCheck.Path, s.HealthCheck.Port)
		if err == nil && !changed {
			a.Log.Info("health check " + s.HealthCheck.ID + " already probes " + s.HealthCheck.Path)
		}
		return err
	case ActSmoke:
		if len(s.Smoke.Exec) > 0 {
			return a.execSmoke(ctx, s.Name, s.Smoke.Exec)
		}
		return a.Prober.Smoke(ctx, *s.Smoke, smokeTimeout)
	}
	return fmt.Errorf("unknown action %q", s.Action)
}

// execSmoke runs cmd in the container and fails unless it exits 0 within
// smokeTimeout; the error holds the last lines of its output.
func (a *Applier) execSmoke(ctx context.Context, name string, cmd []string) error {
	ctx, cancel := context.WithTimeout(ctx, smokeTimeout)
	defer cancel()
	code, out, err := a.Runtime.Exec(ctx, name, cmd)
	if err != nil {
		return fmt.Errorf("exec %q in %s: %w", cmd, name, err)
	}
	if code != 0 {
		err := fmt.Errorf("exec %q in %s exited with code %d", cmd, name, code)
		if out = state.LastLines(out, logTail); strings.TrimSpace(out) != "" {
			err = fmt.Errorf("%w; its output:\n%s", err, indent(out))
		}
		return err
	}
	return nil
}

func (a *Applier) out() io.Writer {
	if a.Out == nil {
		return io.Discard
	}
	return a.Out
}

// withLogs adds the container's last log lines to err.
func (a *Applier) withLogs(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	logs, lerr := a.Runtime.Logs(context.WithoutCancel(ctx), name, logTail)
	if lerr != nil || strings.TrimSpace(logs) == "" {
		return err
	}
	return fmt.Errorf("%w\nlast log lines of %s:\n%s", err, name, indent(logs))
}

// ErrUnhealthy is returned when a new container does not become healthy.
var ErrUnhealthy = errors.New("not healthy")

// waitHealthy checks the container every interval until HealthyThreshold
// consecutive checks pass. Failures before the first pass are the app
// starting up and only count against StartTimeout; after a pass,
// UnhealthyThreshold consecutive failures fail at once. A container that
// stops or restarts fails at once.
func (a *Applier) waitHealthy(ctx context.Context, target, name string, port int, h state.HealthParams) error {
	deadline := a.now().Add(h.StartTimeout)
	passes, fails, seen := 0, 0, false
	t := a.track(ActWaitHealthy, target, h.StartTimeout)
	defer t.done()
	var last error
	for {
		if err := a.running(ctx, name); err != nil {
			return err
		}
		err := a.Prober.Check(ctx, port, h.Path, h.Timeout)
		if err == nil {
			passes, fails, seen = passes+1, 0, true
			if passes >= h.HealthyThreshold {
				return nil
			}
		} else {
			passes, last = 0, err
			if seen {
				fails++
				if fails >= h.UnhealthyThreshold {
					return fmt.Errorf("%w: %d consecutive failed checks of GET %s: %v", ErrUnhealthy, fails, h.Path, err)
				}
			}
		}
		if a.now().After(deadline) {
			return fmt.Errorf("%w within startTimeout %s: last check of GET %s: %v (if the app is only slow to start, raise health.startTimeout)", ErrUnhealthy, h.StartTimeout, h.Path, last)
		}
		t.update(func(sp *StepProgress) { sp.Passes, sp.Want = passes, h.HealthyThreshold })
		if err := a.sleep(ctx, h.Interval); err != nil {
			return err
		}
	}
}

// settle waits until a worker has been running, without a restart, for
// HealthyThreshold consecutive checks one interval apart.
func (a *Applier) settle(ctx context.Context, target, name string, h state.HealthParams) error {
	deadline := a.now().Add(h.StartTimeout)
	passes := 0
	t := a.track(ActSettle, target, h.StartTimeout)
	defer t.done()
	for {
		if err := a.running(ctx, name); err != nil {
			return err
		}
		passes++
		if passes > h.HealthyThreshold {
			return nil
		}
		if a.now().After(deadline) {
			return fmt.Errorf("%w: did not settle within startTimeout %s", ErrUnhealthy, h.StartTimeout)
		}
		t.update(func(sp *StepProgress) { sp.Passes, sp.Want = passes, h.HealthyThreshold+1 })
		if err := a.sleep(ctx, h.Interval); err != nil {
			return err
		}
	}
}

func (a *Applier) running(ctx context.Context, name string) error {
	c, err := a.Runtime.Inspect(ctx, name)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	if !c.Running() || c.RestartCount > 0 {
		return fmt.Errorf("%w: container %s is %s after %d restart(s)", ErrUnhealthy, name, c.State, c.RestartCount)
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

// watch checks a color that has traffic every health interval for
// s.Watch.For: it must keep running without a restart, pass its health
// check, and keep its error rate in the site's access log at or below the
// limit once enough requests were seen.
func (a *Applier) watch(ctx context.Context, s Step, res *Result) error {
	w, h := s.Watch, *s.Health
	var from int64
	if w.LogPath != "" {
		off, err := a.Edge.LogOffset(ctx, w.LogPath)
		if err != nil {
			return err
		}
		from = off
	}
	deadline := a.now().Add(w.For)
	fails := 0
	var seen Traffic
	var times []time.Duration // upstream response times of the color's requests
	defer func() { res.watched(s.Service, seen) }()
	t := a.track(ActWatch, s.Target, w.For)
	defer t.done()
	for {
		if err := a.running(ctx, s.Name); err != nil {
			return err
		}
		if err := a.Prober.Check(ctx, s.HostPort, h.Path, h.Timeout); err != nil {
			fails++
			if fails >= h.UnhealthyThreshold {
				return fmt.Errorf("%w: %d consecutive failed checks of GET %s while it had traffic: %v", ErrUnhealthy, fails, h.Path, err)
			}
		} else {
			fails = 0
		}
		if w.LogPath != "" {
			t, next, err := a.Edge.Traffic(ctx, w.LogPath, from, s.Color)
			if err != nil {
				return err
			}
			from = next
			seen.Requests += t.Requests
			seen.Errors += t.Errors
			times = append(times, t.Times...)
			if seen.Requests >= w.MinRequests && float64(seen.Errors) > w.MaxErrorRate*float64(seen.Requests) {
				return fmt.Errorf("%w: %d of %d requests (%.1f%%) answered 5xx, above maxErrorRate %.1f%%", ErrUnhealthy,
					seen.Errors, seen.Requests, 100*float64(seen.Errors)/float64(seen.Requests), 100*w.MaxErrorRate)
			}
			if err := latencyBreach(w, times); err != nil {
				return err
			}
		}
		t.update(func(sp *StepProgress) { sp.Traffic, sp.Counted = seen, w.LogPath != "" })
		left := deadline.Sub(a.now())
		if left <= 0 {
			a.Log.Info("watched "+s.Target, zap.Duration("for", w.For), zap.Int("requests", seen.Requests), zap.Int("errors", seen.Errors))
			return nil
		}
		if err := a.sleep(ctx, min(h.Interval, left)); err != nil {
			return err
		}
	}
}
