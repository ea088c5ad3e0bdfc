package agent

import (
	"errors"
	"strings"
	"testing"
)

// TestWaitRecordsNothing: a Sync that waits (its turn in a fleet) is asked
// again, records no attempt and leaves readiness alone; /status says why
// and shows the fleet; when the wait ends the commit deploys once.
func TestWaitRecordsNothing(t *testing.T) {
	t.Parallel()
	f := &fake{tip: "a"}
	a := start(t, f, func(c *Config) { c.Fleet = func() any { return map[string]string{"host": "h2"} } })
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
