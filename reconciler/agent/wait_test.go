package agent

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestWaitRecordsNothing: a Sync that waits (its turn in a fleet) is asked
// again, records no attempt and leaves readiness alone; /status says why
// and shows the fleet; when the wait ends the commit deploys once.
func TestWaitRecordsNothing(t *testing.T) {
	t.Parallel()
	f := &fake{tip: "a"}
	core, logs := observer.New(zap.InfoLevel)
	a := start(t, f, func(c *Config) {
		c.Fleet = func() any { return map[string]string{"host": "h2"} }
		c.Log = zap.New(core)
	})
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
	f.set(func() { f.syncErr["b"] = Wait(errors.New("waiting for host h1 to deploy b first")) })
	f.set(func() { f.tip = "b" })
	eventually(t, "several tries of b", func() bool { return f.count("apply b") > 3 })
	s := a.Status()
	if s.AppliedCommit != "a" || s.FailedCommit != "" || !s.Ready || !strings.Contains(s.Waiting, "waiting for host h1") {
		t.Fatalf("status while waiting: %+v", s)
	}
	if fl, ok := s.Fleet.(map[string]string); !ok || fl["host"] != "h2" {
		t.Fatalf("status fleet: %#v", s.Fleet)
	}
	if got := f.results(); got != "start:a:succeeded" {
		t.Fatalf("history while waiting: %s", got)
	}
	// Said once, not at every try; a new reason is said again.
	if d, w := logs.FilterMessage("deploying").Len(), logs.FilterMessage("not deploying yet").Len(); d != 2 || w != 1 {
		t.Fatalf("after %d tries of b: %d \"deploying\" (want 2: a, then b once), %d \"not deploying yet\" (want 1)", f.count("apply b"), d, w)
	}
	f.set(func() { f.syncErr["b"] = Wait(errors.New("waiting for the canary h1 to bake b")) })
	eventually(t, "the new reason said", func() bool { return logs.FilterMessage("not deploying yet").Len() == 2 })
	n := f.count("apply b")
	eventually(t, "more tries of b", func() bool { return f.count("apply b") > n+3 })
	if d, w := logs.FilterMessage("deploying").Len(), logs.FilterMessage("not deploying yet").Len(); d != 2 || w != 2 {
		t.Fatalf("after a new reason: %d \"deploying\", %d \"not deploying yet\", want 2 and 2", d, w)
	}
	f.set(func() { delete(f.syncErr, "b") })
	eventually(t, "b applied", func() bool { return a.Status().AppliedCommit == "b" })
	if s := a.Status(); s.Waiting != "" {
		t.Fatalf("still waiting after the deploy: %q", s.Waiting)
	}
	if got := f.results(); got != "start:a:succeeded poll:b:succeeded" {
		t.Fatalf("history = %s", got)
	}
	if !errors.Is(Wait(errors.New("x")), ErrTransient) || Wait(nil) != nil {
		t.Fatal("Wait: want an ErrTransient (backoff) and Wait(nil) == nil")
	}
}
