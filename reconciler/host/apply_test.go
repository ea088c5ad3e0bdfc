package host

import (
	"context"
	"errors"
	"io"
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
		Names: mh, Markers: memMarkers{mh}, Prober: mh, Log: zaptest.NewLogger(t), Out: io.Discard,
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
	if live := o.Live("web"); live == nil || live.Spec.Image != "web:v2" || len(o.Containers) != 1 {
		t.Fatalf("the refused apply changed the host: live %+v, containers %d", live, len(o.Containers))
	}
	if got := ev.take(); got != "" {
		t.Fatalf("a refused apply announced %q", got)
	}
}
