package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
)

// The executor's tests: hand-written plans run against memhost with a
// virtual clock, faults injected through memhost.Host.Fault.

const (
	env      = "p"
	confDir  = "/etc/nginx/conf.d"
	namesDir = "/names/p"
	logPath  = "/var/log/nginx/reconciler-p-web.log"
	oldImage = "ghcr.io/acme/web:v1"
	newImage = "ghcr.io/acme/web:v2"
	bluePort = 21000
	newPort  = 21001
	blueName = "p-web-blue"
	newName  = "p-web-green"
)

var errBoom = errors.New("boom")

// events is a Notifier that keeps the names of the events it was told.
type events struct {
	mu  sync.Mutex
	got []reconciler.Event
}

func (e *events) Notify(_ context.Context, ev reconciler.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n []string
	for _, ev := range e.got {
		n = append(n, string(ev.Name))
	}
	return n
}

// rig is a host where web runs blue on bluePort with its traffic and its
// name, and the Applier that runs plans on it.
type rig struct {
	h      *memhost.Host
	clock  *memhost.Clock
	ap     *reconciler.Applier
	events *events
}

func newRig(t *testing.T) *rig {
	t.Helper()
	h := memhost.New()
	d := &state.Desired{Env: env, Nginx: state.Nginx{ConfDir: confDir}, NamesDir: namesDir}
	h.Seed(d, &state.Observed{
		Containers: []state.Container{{ID: blueName, Name: blueName, Service: "web", Color: state.Blue, State: "running", HostPort: bluePort, ImageID: "sha256:v1"}},
		ImageIDs:   map[string]string{oldImage: "sha256:v1", newImage: "sha256:v2"},
		Names:      map[string]state.Color{"web": state.Blue},
	})
	clock := memhost.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ev := &events{}
	ap := h.Applier(clock)
	ap.Notifier = ev
	return &rig{h: h, clock: clock, ap: ap, events: ev}
}

func health() *state.HealthParams {
	return &state.HealthParams{Path: "/health", Interval: 5 * time.Second, Timeout: time.Second,
		HealthyThreshold: 2, UnhealthyThreshold: 3, StartTimeout: time.Minute}
}

func watchStep(d time.Duration) reconciler.Step {
	return reconciler.Step{Action: reconciler.ActWatch, Target: "web/green", Name: newName, Service: "web", Color: state.Green,
		HostPort: newPort, Health: health(), Watch: &reconciler.Watch{For: d, LogPath: logPath, MaxErrorRate: 0.1, MinRequests: 20}}
}

// replacePlan is a blue-green replace of web, blue → green, with every
// step kind a replace can have: start, wait-healthy, write-nginx, canary
// shift and watch, switch, name, smoke (request and exec), bake; then,
// past UndoBefore, a best-effort health check and the drain of blue.
func replacePlan() *reconciler.Plan {
	site := &reconciler.SiteChange{ConfDir: confDir}
	proxy := &reconciler.NameProxySpec{Name: state.NameProxyName(env, "web"), Env: env, Service: "web", Port: 8080, Network: env, Dir: namesDir}
	steps := []reconciler.Step{
		{Action: reconciler.ActStart, Target: "web/green", Name: newName, HostPort: newPort, Container: &reconciler.ContainerSpec{
			Name: newName, HostPort: newPort, Spec: state.Spec{Image: newImage, ContainerPort: 8080},
			Labels: map[string]string{state.LabelEnv: env, state.LabelService: "web", state.LabelColor: string(state.Green)}}},
		{Action: reconciler.ActWaitHealthy, Target: "web/green", Name: newName, HostPort: newPort, Health: health()},
		{Action: reconciler.ActWriteNginx, Target: "nginx p-web.conf", Site: &reconciler.SiteChange{ConfDir: confDir,
			Path: confDir + "/p-web.conf", Content: []byte("# new site\n"), Loaded: &reconciler.SmokeRequest{URL: "http://127.0.0.1:80/.reconciler-check/x", WantStatus: 204}}},
		{Action: reconciler.ActShift, Target: "web/green", Service: "web", Color: state.Green, Percent: 10, Site: site},
		watchStep(time.Minute),
		{Action: reconciler.ActSwitch, Target: "web/green", Service: "web", Color: state.Green, Site: site},
		{Action: reconciler.ActName, Target: "web/green", Service: "web", Color: state.Green, NameProxy: proxy},
		{Action: reconciler.ActSmoke, Target: "web/green", Smoke: &reconciler.SmokeRequest{URL: "http://127.0.0.1:80/health", WantStatus: 200}},
		{Action: reconciler.ActSmoke, Target: "web/green", Name: newName, Smoke: &reconciler.SmokeRequest{Exec: []string{"/app", "selftest"}}},
		watchStep(5 * time.Minute),
	}
	undoBefore := len(steps)
	steps = append(steps,
		reconciler.Step{Action: reconciler.ActHealthCheck, Target: "route53 web", BestEffort: true, HealthCheck: &reconciler.HealthCheckUpdate{ID: "hc", Path: "/health", Port: 443}},
		reconciler.Step{Action: reconciler.ActDrain, Target: "web/blue", Name: blueName, Drain: 30 * time.Second},
	)
	return &reconciler.Plan{Env: env, Commit: "c2", Changes: []reconciler.Change{{
		Kind: reconciler.Replace, Subject: "web", Summary: "replace blue → green",
		OldImage: oldImage, NewImage: newImage,
		Steps: steps, UndoBefore: undoBefore,
		Undo: []reconciler.Step{
			{Action: reconciler.ActSwitch, Target: "web/blue", Service: "web", Color: state.Blue, Site: site},
			{Action: reconciler.ActName, Target: "web/blue", Service: "web", Color: state.Blue, NameProxy: proxy},
			{Action: reconciler.ActRemove, Target: "web/green", Name: newName},
		},
	}}}
}

// failOn fails every call for which match is true.
func failOn(match func(c memhost.Call) bool) func(memhost.Call) error {
	return func(c memhost.Call) error {
		if match(c) {
			return fmt.Errorf("%s: %w", c, errBoom)
		}
		return nil
	}
}

// failAfter fails each call for which fail is true once a call for which
// from is true was seen (that call included).
func failAfter(from, fail func(c memhost.Call) bool) func(memhost.Call) error {
	var mu sync.Mutex
	seen := false
	return func(c memhost.Call) error {
		mu.Lock()
		defer mu.Unlock()
		seen = seen || from(c)
		if seen && fail(c) {
			return fmt.Errorf("%s: %w", c, errBoom)
		}
		return nil
	}
}

func op(name string) func(c memhost.Call) bool {
	return func(c memhost.Call) bool { return c.Op == name }
}

func (r *rig) calls() []string {
	var out []string
	for _, c := range r.h.Calls() {
		out = append(out, c.String())
	}
	return out
}

// indexOf is the index of the first call that is want, -1 when none.
func (r *rig) indexOf(want string) int { return slices.Index(r.calls(), want) }

// wantRolledBack checks that err is a rollback and that the host is as
// before the apply: green gone, blue running with all the traffic and the
// name.
func (r *rig) wantRolledBack(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, reconciler.ErrRolledBack) {
		t.Fatalf("apply = %v, want a rolled-back error", err)
	}
	if _, ok := r.h.Container(newName); ok {
		t.Errorf("%s still exists after the undo", newName)
	}
	if c, ok := r.h.Container(blueName); !ok || !c.Running() {
		t.Errorf("%s is %+v (exists %v), want it running", blueName, c, ok)
	}
	if color, pct := r.h.Live(confDir, env, "web"); color != state.Blue || pct != 100 {
		t.Errorf("traffic goes %d%% to %s, want all of it on blue", pct, color)
	}
	if n := r.h.Name(namesDir, "web"); n != state.Blue {
		t.Errorf("name web points to %q, want blue", n)
	}
	if i := r.indexOf("remove " + blueName); i >= 0 {
		t.Errorf("blue was removed (call %d): %q", i, r.calls())
	}
}

// TestApplySucceeds: every step runs in order, traffic and name end on
// green, blue is drained (after 30s of the clock) and removed, and the
// deploy is announced as started and succeeded.
func TestApplySucceeds(t *testing.T) {
	r := newRig(t)
	res, err := r.ap.Apply(context.Background(), replacePlan())
	if err != nil {
		t.Fatal(err)
	}
	if color, pct := r.h.Live(confDir, env, "web"); color != state.Green || pct != 100 {
		t.Errorf("traffic goes %d%% to %s, want all of it on green", pct, color)
	}
	if n := r.h.Name(namesDir, "web"); n != state.Green {
		t.Errorf("name web points to %q, want green", n)
	}
	if c, ok := r.h.Container(blueName); !ok || c.State != "exited" {
		t.Errorf("blue after the drain: %+v (present %v), want it stopped and kept", c, ok)
	}
	order := []string{"start p-web-green", "write /etc/nginx/conf.d/p-web.conf", "shift p-web 10% green", "switch p-web green",
		"point /names/p/web green", "smoke http://127.0.0.1:80/health", "exec p-web-green /app selftest", "health-check hc /health:443", "stop p-web-blue"}
	last := -1
	for _, want := range order {
		i := r.indexOf(want)
		if i <= last {
			t.Fatalf("call %q at %d, want it after %d: %q", want, i, last, r.calls())
		}
		last = i
	}
	if slept := r.clock.Slept(); !slices.Contains(slept, 30*time.Second) {
		t.Errorf("slept %v, want the 30s drain among them", slept)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings %q, want none", res.Warnings)
	}
	if got, want := r.events.names(), []string{"deploy.started", "deploy.succeeded"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if ev := r.events.got[1]; ev.Duration < (6*time.Minute).Seconds() || len(ev.Services) != 1 || ev.Services[0].NewImage != newImage {
		t.Errorf("succeeded event %+v: want the clock's duration (canary watch, bake, drain) and web's new image", ev)
	}
}

// TestApplyUndo: a failure at any step up to the end of the bake undoes
// the change: traffic and name back on blue, green removed, blue kept;
// the deploy is announced as rolled back, then failed.
func TestApplyUndo(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   func(memhost.Call) error
		setup   func(r *rig) // changes the rig beyond the fault hook
		wantErr string
	}{
		{name: "start", wantErr: "start web/green", fault: failOn(op("start"))},
		{name: "wait-healthy never passes", wantErr: "within startTimeout 1m0s", fault: failOn(op("check"))},
		{name: "wait-healthy container exits", wantErr: "is exited", setup: func(r *rig) {
			r.clock.OnSleep = func(time.Time) { r.h.Update(newName, func(c *state.Container) { c.State = "exited" }) }
		}},
		{name: "write-nginx", wantErr: "write-nginx", fault: failOn(op("write"))},
		{name: "write-nginx not loaded", wantErr: "did not start serving", fault: failOn(func(c memhost.Call) bool {
			return c.Op == "smoke" && strings.Contains(c.Target, ".reconciler-check")
		})},
		{name: "shift", wantErr: "shift web 10%", fault: failOn(op("shift"))},
		{name: "canary watch", wantErr: "watch web/green 1m0s: not healthy: 3 consecutive failed checks", fault: failAfter(op("shift"), op("check"))},
		{name: "switch", wantErr: "switch web → green", fault: failOn(func(c memhost.Call) bool { return c.Op == "switch" && c.Arg == string(state.Green) })},
		{name: "name", wantErr: "name web → green", fault: failOn(func(c memhost.Call) bool { return c.Op == "point" && c.Arg == string(state.Green) })},
		{name: "smoke request", wantErr: "smoke web/green http://127.0.0.1:80/health", fault: failOn(func(c memhost.Call) bool {
			return c.Op == "smoke" && strings.HasSuffix(c.Target, "/health")
		})},
		{name: "smoke exec", wantErr: "exited with code 3; its output:\n    selftest: db unreachable", setup: func(r *rig) {
			r.h.ExecResult = func(string, []string) (int, string) { return 3, "selftest: db unreachable\n" }
		}},
		{name: "bake watch", wantErr: "watch web/green 5m0s", fault: failAfter(op("exec"), op("check"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.h.Fault = tc.fault
			if tc.setup != nil {
				tc.setup(r)
			}
			_, err := r.ap.Apply(context.Background(), replacePlan())
			r.wantRolledBack(t, err)
			if err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not say %q", err, tc.wantErr)
			}
			if got, want := r.events.names(), []string{"deploy.started", "deploy.rolled_back", "deploy.failed"}; !slices.Equal(got, want) {
				t.Errorf("events %q, want %q", got, want)
			}
		})
	}
}

// TestApplyUndoFails: when an undo step fails too, the error says so and
// where traffic is, and it is not a rollback.
func TestApplyUndoFails(t *testing.T) {
	for _, tc := range []struct {
		name, undo, where string
	}{
		{"switch back", "switch p-web blue", "traffic may still be on the new version"},
		{"remove new", "remove p-web-green", "traffic is on the version that served before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.h.Fault = func(c memhost.Call) error {
				if c.Op == "smoke" && strings.HasSuffix(c.Target, "/health") || c.String() == tc.undo {
					return fmt.Errorf("%s: %w", c, errBoom)
				}
				return nil
			}
			_, err := r.ap.Apply(context.Background(), replacePlan())
			if err == nil || errors.Is(err, reconciler.ErrRolledBack) {
				t.Fatalf("apply = %v, want an error that is not a rollback", err)
			}
			if !strings.Contains(err.Error(), "also failed") || !strings.Contains(err.Error(), tc.where) {
				t.Errorf("error %q does not say the undo failed and %q", err, tc.where)
			}
		})
	}
}

// TestApplyNoUndoAfterSwitch: a failure past UndoBefore (the drain) does
// not undo: green keeps the traffic, and only the failure is reported.
func TestApplyNoUndoAfterSwitch(t *testing.T) {
	r := newRig(t)
	r.h.Fault = failOn(func(c memhost.Call) bool { return c.String() == "stop "+blueName })
	_, err := r.ap.Apply(context.Background(), replacePlan())
	if err == nil || errors.Is(err, reconciler.ErrRolledBack) || !strings.Contains(err.Error(), "drain web/blue 30s") {
		t.Fatalf("apply = %v, want the drain's error, not a rollback", err)
	}
	if color, pct := r.h.Live(confDir, env, "web"); color != state.Green || pct != 100 {
		t.Errorf("traffic goes %d%% to %s, want all of it on green", pct, color)
	}
	if _, ok := r.h.Container(newName); !ok {
		t.Error("green was removed after its switch")
	}
	if i := r.indexOf("switch p-web blue"); i >= 0 {
		t.Errorf("traffic was switched back: %q", r.calls())
	}
	if got, want := r.events.names(), []string{"deploy.started", "deploy.failed"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestApplyBestEffort: a best-effort step's failure is a warning of the
// Result; the deploy goes on (blue is drained) and succeeds.
func TestApplyBestEffort(t *testing.T) {
	r := newRig(t)
	r.h.Fault = failOn(op("health-check"))
	res, err := r.ap.Apply(context.Background(), replacePlan())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "health-check route53 web") || !strings.Contains(res.Warnings[0], "boom") {
		t.Errorf("warnings %q, want the health check's failure", res.Warnings)
	}
	if c, _ := r.h.Container(blueName); c.State != "exited" {
		t.Error("blue was not drained after the warning")
	}
	// A best-effort step cut by a cancelled context is a failure.
	r = newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.h.Fault = func(c memhost.Call) error {
		if c.Op == "health-check" {
			cancel()
			return context.Canceled
		}
		return nil
	}
	if _, err := r.ap.Apply(ctx, replacePlan()); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("apply with a cancelled best-effort step = %v, want its error", err)
	}
}

// migrationChange is the migrations change of a plan: the job, the record,
// and as compensation a rollback job named rollback and the record of the
// previous hash.
func migrationChange(rollback string) reconciler.Change {
	job := func(cmd string) *reconciler.ContainerSpec {
		return &reconciler.ContainerSpec{Name: "p-migrations", Spec: state.Spec{Image: newImage, Command: []string{cmd}}}
	}
	return reconciler.Change{
		Kind: reconciler.Migrate, Subject: "migrations", Summary: "run " + newImage,
		Steps: []reconciler.Step{
			{Action: reconciler.ActMigrate, Target: "migrations", Name: "p-migrations", Container: job("up")},
			{Action: reconciler.ActRecord, Target: "migrations", Hash: "new"},
		},
		Compensate: []reconciler.Step{
			{Action: reconciler.ActMigrate, Target: "migrations rollback", Name: "p-migrations", Container: job(rollback)},
			{Action: reconciler.ActRecord, Target: "migrations", Hash: "old"},
		},
	}
}

// TestApplyCompensate: a later change's failure runs the Compensate steps
// of the changes that succeeded before it, latest first, even when the
// failure was a cancelled context (a SIGTERM).
func TestApplyCompensate(t *testing.T) {
	for _, cancelled := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancelled=%v", cancelled), func(t *testing.T) {
			r := newRig(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r.h.Fault = func(c memhost.Call) error {
				if c.Op == "start" {
					if cancelled {
						cancel()
						return context.Canceled
					}
					return errBoom
				}
				return nil
			}
			p := replacePlan()
			p.Changes = append([]reconciler.Change{migrationChange("down-1"), migrationChange("down-2")}, p.Changes...)
			_, err := r.ap.Apply(ctx, p)
			r.wantRolledBack(t, err)
			if !strings.Contains(err.Error(), "the migrations of this deploy were rolled back") {
				t.Errorf("error %q does not say the migrations were rolled back", err)
			}
			var cmds []string
			for _, j := range r.h.Jobs() {
				cmds = append(cmds, j.Spec.Command[0])
			}
			if want := []string{"up", "up", "down-2", "down-1"}; !slices.Equal(cmds, want) {
				t.Errorf("jobs %q, want %q (compensation latest first)", cmds, want)
			}
			calls := r.calls()
			want := []string{"run-job p-migrations down-2", "record-migration p old", "run-job p-migrations down-1", "record-migration p old"}
			if len(calls) < len(want) || !slices.Equal(calls[len(calls)-len(want):], want) {
				t.Errorf("calls %q, want them to end with the compensation %q", calls, want)
			}
		})
	}
}

// TestApplyMigrationFails: a failed migrations job changes no service, is
// announced as migration.failed and deploy.failed, and compensates
// nothing of its own.
func TestApplyMigrationFails(t *testing.T) {
	r := newRig(t)
	r.h.JobExit = func(reconciler.ContainerSpec) int { return 2 }
	p := replacePlan()
	p.Changes = append([]reconciler.Change{migrationChange("down")}, p.Changes...)
	_, err := r.ap.Apply(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "exited with code 2") || !strings.Contains(err.Error(), "no service was changed") {
		t.Fatalf("apply = %v, want the job's exit code and that no service changed", err)
	}
	if i := r.indexOf("start " + newName); i >= 0 {
		t.Errorf("a service was started after the failed migrations: %q", r.calls())
	}
	if len(r.h.Jobs()) != 1 {
		t.Errorf("jobs %v, want only the failed one (no compensation of itself)", r.h.Jobs())
	}
	if got, want := r.events.names(), []string{"deploy.started", "migration.failed", "deploy.failed"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
