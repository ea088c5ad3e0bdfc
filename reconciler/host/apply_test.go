package host

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// TestApply: apply's sequence without an engine. A deploy is recorded in
// the history and announced; an apply in sync is neither; a commit that
// does not contain what the host runs is refused with ForwardOnly before
// anything changes.
func TestApply(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{Runtime: memRuntime{mh.Runtime()}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"),
		Names: mh, Markers: mh, Prober: mh, Log: zaptest.NewLogger(t), Out: io.Discard,
		Clock: memhost.NewClock(time.Unix(0, 0))}
	file := func(image string) fstest.MapFS {
		return fstest.MapFS{"envs/t2.yaml": {Data: []byte(`environment: t2
nginx: {confDir: /conf, test: "true", reload: "true", logDir: /logs}
services:
  web:
    image: ` + image + `
    containerPort: 8080
    listen: "127.0.0.1:18081"
    drain: 1s
`)}}
	}
	// History: c1 ← c2; c0 is not in it.
	contains := map[string]map[string]bool{"c1": {"c1": true}, "c2": {"c1": true, "c2": true}}
	src := func(hash, image string) Source {
		return Source{FS: file(image), Hash: hash, Contains: func(h string) (bool, error) {
			if contains[hash] == nil {
				return false, ErrUnknownCommit
			}
			return contains[hash][h], nil
		}}
	}
	ev := &events{}
	apply := func(s Source, forward bool) (Applied, error) {
		e, err := state.Load(s.FS, "t2")
		if err != nil {
			t.Fatal(err)
		}
		var printed bool
		out, err := h.Apply(context.Background(), s, e, ApplyOptions{ForwardOnly: forward,
			Planned: func(*Planned) { printed = true },
			Notify:  func([]state.Notify) Notifier { return ev }})
		if err == nil && !printed {
			t.Fatal("the plan was not handed out before the deploy")
		}
		return out, err
	}
	records := func() []history.Record {
		recs, _, err := history.Read(dir.HistoryPath("t2"))
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	if out, err := apply(src("c1", "web:v1"), true); err != nil || out.InSync {
		t.Fatalf("first apply: %+v, %v", out, err)
	}
	if got := ev.take(); got != "deploy.started deploy.succeeded" {
		t.Fatalf("first apply announced %q", got)
	}
	if recs := records(); len(recs) != 1 || recs[0].Trigger != history.TriggerApply || recs[0].Result != history.Succeeded || recs[0].Commit != "c1" {
		t.Fatalf("history after the first apply: %+v", recs)
	}
	if out, err := apply(src("c1", "web:v1"), true); err != nil || !out.InSync || len(records()) != 1 || ev.take() != "" {
		t.Fatalf("apply in sync: %+v, %v; records %d", out, err, len(records()))
	}
	if _, err := apply(src("c2", "web:v2"), true); err != nil {
		t.Fatalf("forward apply: %v", err)
	}
	ev.take()
	// Back to c1's image with a commit that does not contain c2: refused.
	_, err = apply(src("c0", "web:v1"), true)
	if !errors.Is(err, ErrNotForward) {
		t.Fatalf("backward apply: %v; want ErrNotForward", err)
	}
	o, err := h.Observe(context.Background(), Scope{Env: "t2", ConfDir: "/conf"})
	if err != nil {
		t.Fatal(err)
	}
	if live := o.Live("web"); live == nil || live.Spec.Image != "web:v2" || len(o.Containers) != 2 { // v1 kept, stopped
		t.Fatalf("the refused apply changed the host: live %+v, containers %d", live, len(o.Containers))
	}
	if got := ev.take(); got != "" {
		t.Fatalf("a refused apply announced %q", got)
	}
}

// stopsAfterDeploy is the in-memory engine, whose containers show as
// exited from the second observation on: a deploy that "worked" but left
// nothing running.
type stopsAfterDeploy struct {
	memRuntime
	observed *int
}

func (r stopsAfterDeploy) Observe(ctx context.Context, env string, images []string) (state.Snapshot, error) {
	snap, err := r.memRuntime.Observe(ctx, env, images)
	*r.observed++
	if *r.observed > 1 {
		for i := range snap.Containers {
			snap.Containers[i].State = "exited"
		}
	}
	return snap, err
}

// TestApplyConfirms: apply observes the host again after a deploy and
// fails, recording the failure, when the plan is not empty then.
func TestApplyConfirms(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var observed int
	h := &Host{Runtime: stopsAfterDeploy{memRuntime{mh.Runtime()}, &observed}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"),
		Names: mh, Markers: mh, Prober: mh, Log: zaptest.NewLogger(t), Out: io.Discard,
		Clock: memhost.NewClock(time.Unix(0, 0))}
	fsys := fstest.MapFS{"envs/t4.yaml": {Data: []byte("environment: t4\nnginx: {confDir: /conf, test: \"true\", reload: \"true\"}\nservices:\n  worker:\n    image: w:v1\n")}}
	e, err := state.Load(fsys, "t4")
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Apply(context.Background(), Source{FS: fsys, Hash: "c0ffee0000000000000000000000000000000004"}, e, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), "deployed, but the host still differs") {
		t.Fatalf("apply: %v; want the difference left named", err)
	}
	recs, _, err := history.Read(dir.HistoryPath("t4"))
	if err != nil || len(recs) != 1 || recs[0].Result != history.Failed {
		t.Fatalf("history: %+v, %v; want one failed record", recs, err)
	}
}
