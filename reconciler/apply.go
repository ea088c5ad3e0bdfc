package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

// Journal records facts that must outlive one apply.
type Journal interface {
	// RecordMigration remembers hash as env's last successful migrations run.
	RecordMigration(env, hash string) error
}

// StopTimeout is how long a container gets between SIGTERM and SIGKILL when
// it is removed.
const StopTimeout = 10 * time.Second

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
	Log     *zap.Logger
	// Out receives the output of the migrations job.
	Out io.Writer
}

// Apply runs every change of p in order and stops at the first failure. A
// change that fails before its traffic switch is undone (the new container
// is removed; the live one was never touched) and its error says so.
func (a *Applier) Apply(ctx context.Context, p *Plan) error {
	for _, c := range p.Changes {
		a.Log.Info(fmt.Sprintf("%s %s: %s", c.Kind.Symbol(), c.Subject, c.Summary), zap.Strings("reasons", c.Reasons))
		if err := a.change(ctx, p, c); err != nil {
			return fmt.Errorf("%s %s: %w", c.Kind, c.Subject, err)
		}
	}
	return nil
}

func (a *Applier) change(ctx context.Context, p *Plan, c Change) error {
	for i, s := range c.Steps {
		start := time.Now()
		err := a.step(ctx, p, s)
		if err == nil {
			a.Log.Info(s.String(), zap.Duration("took", time.Since(start).Round(time.Millisecond)))
			continue
		}
		if i >= c.UndoBefore || len(c.Undo) == 0 {
			return fmt.Errorf("%s: %w", s, err)
		}
		// The new container never got traffic: take it away again, even
		// when ctx was cancelled (a SIGTERM must not leave it behind).
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*StopTimeout)
		defer cancel()
		var undone []string
		for _, u := range c.Undo {
			if uerr := a.step(undoCtx, p, u); uerr != nil {
				return fmt.Errorf("%s: %w\nundo %s also failed: %v\ntraffic stayed on the live version; run apply again once the cause is fixed: it removes what this one left behind", s, err, u, uerr)
			}
			undone = append(undone, u.String())
		}
		a.Log.Warn("rolled back "+c.Subject, zap.Strings("undone", undone))
		return fmt.Errorf("%s: %w\nrolled back: %s; traffic stayed on the live version", s, err, strings.Join(undone, ", "))
	}
	return nil
}

func (a *Applier) step(ctx context.Context, p *Plan, s Step) error {
	switch s.Action {
	case ActPull:
		_, err := a.Runtime.Pull(ctx, s.Image)
		return err
	case ActMigrate:
		code, err := a.Runtime.RunJob(ctx, *s.Container, a.out())
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("migrations exited with code %d; no service was changed", code)
		}
		return nil
	case ActRecord:
		return a.Journal.RecordMigration(p.Env, s.Hash)
	case ActRemove:
		return a.Runtime.Remove(ctx, s.Name, StopTimeout)
	case ActStart:
		return a.Runtime.Start(ctx, *s.Container)
	case ActWaitHealthy:
		return a.withLogs(ctx, s.Name, a.waitHealthy(ctx, s.Name, s.HostPort, *s.Health))
	case ActSettle:
		return a.withLogs(ctx, s.Name, a.settle(ctx, s.Name, *s.Health))
	case ActWriteNginx:
		return a.Edge.Write(ctx, s.Site.Path, s.Site.Content)
	case ActSwitch:
		return a.Edge.Switch(ctx, s.Site.ConfDir, p.Env, s.Service, s.Color)
	case ActDrain:
		a.Log.Info("draining "+s.Target, zap.Duration("for", s.Drain))
		if err := sleep(ctx, s.Drain); err != nil {
			return fmt.Errorf("drain interrupted; %s keeps running without traffic and is removed by the next apply: %w", s.Name, err)
		}
		return a.Runtime.Remove(ctx, s.Name, StopTimeout)
	case ActRemoveNginx:
		return a.Edge.Remove(ctx, s.Site.ConfDir, p.Env, s.Service)
	}
	return fmt.Errorf("unknown action %q", s.Action)
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
func (a *Applier) waitHealthy(ctx context.Context, name string, port int, h state.HealthParams) error {
	deadline := time.Now().Add(h.StartTimeout)
	passes, fails, seen := 0, 0, false
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
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within startTimeout %s: last check of GET %s: %v (if the app is only slow to start, raise health.startTimeout)", ErrUnhealthy, h.StartTimeout, h.Path, last)
		}
		if err := sleep(ctx, h.Interval); err != nil {
			return err
		}
	}
}

// settle waits until a worker has been running, without a restart, for
// HealthyThreshold consecutive checks one interval apart.
func (a *Applier) settle(ctx context.Context, name string, h state.HealthParams) error {
	deadline := time.Now().Add(h.StartTimeout)
	passes := 0
	for {
		if err := a.running(ctx, name); err != nil {
			return err
		}
		passes++
		if passes > h.HealthyThreshold {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: did not settle within startTimeout %s", ErrUnhealthy, h.StartTimeout)
		}
		if err := sleep(ctx, h.Interval); err != nil {
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

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}
