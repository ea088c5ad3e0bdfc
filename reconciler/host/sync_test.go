package host

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// memRuntime is memhost's runtime with what the application layer reads
// beyond the executor: nothing to report.
type memRuntime struct{ memhost.Runtime }

func (memRuntime) Resources(context.Context, string) ([]state.Resources, error) { return nil, nil }
func (memRuntime) StreamLogs(context.Context, string, int, bool, io.Writer, io.Writer) error {
	return nil
}
func (memRuntime) ImagesInUse(context.Context) (map[string]bool, error) { return nil, nil }
func (memRuntime) ImageInfo(context.Context, string) (state.ImageInfo, bool, error) {
	return state.ImageInfo{}, false, nil
}
func (memRuntime) RemoveImage(context.Context, state.ImageInfo) error { return nil }
func (memRuntime) UnusedProxyImages(context.Context, map[string]bool) ([]state.ImageInfo, error) {
	return nil, nil
}

// events records what a notifier was told.
type events struct {
	mu  sync.Mutex
	got []reconciler.Event
}

func (e *events) Notify(_ context.Context, ev reconciler.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) Close(time.Duration) {}

// names is the events' names so far, space-separated.
func (e *events) names() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n []string
	for _, ev := range e.got {
		n = append(n, string(ev.Name))
	}
	return strings.Join(n, " ")
}

// texts is every event so far as text, every field included.
func (e *events) texts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.got {
		out = append(out, fmt.Sprintf("%+v", ev))
	}
	return out
}

// take returns names and forgets the events.
func (e *events) take() string {
	s := e.names()
	e.mu.Lock()
	e.got = nil
	e.mu.Unlock()
	return s
}

// oneCommit is a mirror that holds one commit.
type oneCommit struct{ src Source }

func (m oneCommit) Fetch(context.Context) (Source, error) { return m.src, nil }
func (m oneCommit) Commit(string) (Source, error)         { return m.src, nil }

// TestSyncModes: the agent's mode decides how a sync is announced. A
// Deploy is deploy.started and deploy.succeeded; a Heal that repairs
// drift is drift.repaired only (also right after an agent restart, when
// the syncer has seen nothing before); a Check changes nothing.
func TestSyncModes(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	env := "t1"
	fsys := fstest.MapFS{"envs/t1.yaml": {Data: []byte(`environment: t1
nginx: {confDir: /conf, test: "true", reload: "true", logDir: /logs}
services:
  web:
    image: web:v1
    containerPort: 8080
    listen: "127.0.0.1:18080"
    drain: 1s
`)}}
	ev := &events{}
	s := &Syncer{
		Env: env, Mirror: oneCommit{Source{FS: fsys, Hash: "c0ffee0000000000000000000000000000000001"}}, Dir: dir,
		LockTimeout: time.Second,
		Open: func(context.Context, *state.Env) (*Host, error) {
			return &Host{Runtime: memRuntime{mh.Runtime()}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"),
				Names: mh, Markers: mh, Prober: mh, Log: zaptest.NewLogger(t), Out: io.Discard,
				Clock: memhost.NewClock(time.Unix(0, 0))}, nil
		},
		Down:     func(context.Context) bool { return false },
		Notifier: func([]state.Notify) Notifier { return ev },
		Log:      zaptest.NewLogger(t),
	}
	ctx := context.Background()
	rev := agent.Revision{Hash: "c0ffee0000000000000000000000000000000001"}

	out, err := s.Sync(ctx, rev, agent.Deploy)
	if err != nil || len(out.Changes) == 0 {
		t.Fatalf("deploy: %v, changes %v", err, out.Changes)
	}
	if got := ev.take(); got != "deploy.started deploy.succeeded" {
		t.Fatalf("deploy announced %q", got)
	}
	var live []string
	for _, svc := range out.Services {
		if svc.Live {
			live = append(live, svc.Container)
		}
	}
	if strings.Join(live, " ") != "t1-web-blue" {
		t.Fatalf("live containers after the deploy: %v", out.Services)
	}

	// Drift: the live container stops. A Check reports it and changes nothing.
	if !mh.Update("t1-web-blue", func(c *state.Container) { c.State = "exited" }) {
		t.Fatal("no container t1-web-blue")
	}
	out, err = s.Sync(ctx, rev, agent.Check)
	if err != nil || len(out.Changes) == 0 || ev.take() != "" {
		t.Fatalf("check: %v, changes %v", err, out.Changes)
	}
	if c, _ := mh.Container("t1-web-blue"); c.State != "exited" {
		t.Fatalf("a check changed the host: %+v", c)
	}

	// A Heal repairs it and says so, and only so.
	if _, err := s.Sync(ctx, rev, agent.Heal); err != nil {
		t.Fatal(err)
	}
	if got := ev.take(); got != string(state.EventDriftRepaired) {
		t.Fatalf("heal announced %q; want drift.repaired only", got)
	}
	if out, err = s.Sync(ctx, rev, agent.Check); err != nil || len(out.Changes) != 0 {
		t.Fatalf("after the heal: %v, changes %v", err, out.Changes)
	}
}

// TestSyncRefusedNotifiesApplied: deploy.refused goes to the receivers of
// the applied commit, planned for them when the syncer has not seen it
// (an agent restart); before a first deploy nothing is sent.
func TestSyncRefusedNotifiesApplied(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"envs/t2.yaml": {Data: []byte(`environment: t2
nginx: {confDir: /conf, test: "true", reload: "true", logDir: /logs}
notify: [{url: "http://127.0.0.1:1/applied-hook"}]
services:
  web:
    image: web:v1
    containerPort: 8080
    listen: "127.0.0.1:18081"
`)}}
	ev := &events{}
	var targets []string
	s := &Syncer{
		Env: "t2", Mirror: oneCommit{Source{FS: fsys, Hash: "c0ffee0000000000000000000000000000000002"}}, Dir: dir,
		LockTimeout: time.Second,
		Open: func(context.Context, *state.Env) (*Host, error) {
			return &Host{Runtime: memRuntime{mh.Runtime()}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"),
				Names: mh, Markers: mh, Prober: mh, Log: zaptest.NewLogger(t), Out: io.Discard,
				Clock: memhost.NewClock(time.Unix(0, 0))}, nil
		},
		Down: func(context.Context) bool { return false },
		Notifier: func(ts []state.Notify) Notifier {
			for _, n := range ts {
				targets = append(targets, n.URL)
			}
			return ev
		},
		Log: zaptest.NewLogger(t),
	}
	ctx := context.Background()
	bad := agent.Revision{Hash: "bad0000000000000000000000000000000000000"}
	s.Refused(ctx, agent.Revision{}, bad, agent.ErrNotDescendant)
	if got := ev.take(); got != "" {
		t.Fatalf("refusal before a first deploy announced %q", got)
	}
	s.Refused(ctx, agent.Revision{Hash: "c0ffee0000000000000000000000000000000002"}, bad, agent.ErrNotDescendant)
	if got := ev.take(); got != "deploy.refused" || strings.Join(targets, " ") != "http://127.0.0.1:1/applied-hook" {
		t.Fatalf("refusal announced %q to %q, want deploy.refused to the applied commit's receiver", got, targets)
	}
}
