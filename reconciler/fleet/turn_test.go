package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/state"
)

func TestTurn(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := func(parallel int, canary string) *state.Fleet {
		return &state.Fleet{Hosts: []string{"a", "b", "c", "d"}, Parallel: parallel, Canary: canary, CanaryBake: &state.Duration{Duration: 10 * time.Minute}}
	}
	applied := func(at time.Time, hs ...string) Snapshot {
		s := Snapshot{Hosts: map[string]HostState{}}
		for _, h := range hs {
			s.Hosts[h] = HostState{Applied: Result{Host: h, Commit: "c1", Result: Succeeded, At: at},
				Health: &Health{Host: h, Commit: "c1", Healthy: true}}
		}
		return s
	}
	halted := applied(now, "a")
	halted.Halt = &Halt{Commit: "c1", Host: "b", Error: "health check failed"}
	beatOnly := func(healthy bool) Snapshot {
		return Snapshot{Hosts: map[string]HostState{"a": {Health: &Health{Host: "a", Commit: "c1", Healthy: healthy}}}}
	}
	unhealthy := applied(now.Add(-time.Hour), "a")
	unhealthy.Hosts["a"].Health.Healthy = false
	noBake := f(2, "a")
	noBake.CanaryBake = &state.Duration{}
	for _, tc := range []struct {
		name   string
		fleet  *state.Fleet
		host   string
		snap   Snapshot
		wantOK bool
		want   string
	}{
		{"first host goes", f(1, ""), "a", applied(now), true, ""},
		{"second waits for the first", f(1, ""), "b", applied(now), false, "waiting for host a to deploy c1 first"},
		{"second after the first", f(1, ""), "b", applied(now, "a"), true, ""},
		{"third waits for both", f(1, ""), "c", applied(now, "b"), false, "waiting for host a to deploy c1 first"},
		{"parallel 2: second goes with the first", f(2, ""), "b", applied(now), true, ""},
		{"parallel 2: third waits for the first", f(2, ""), "c", applied(now), false, "waiting for host a"},
		{"halted", f(1, ""), "c", halted, false, "the rollout of c1 is halted: host b failed it (health check failed)"},
		{"the failed host itself is not halted", f(1, ""), "b", halted, true, ""},
		{"canary bakes", f(2, "a"), "b", applied(now.Add(-time.Minute), "a"), false, "the canary a bakes c1 until 2026-01-01T12:09:00Z"},
		{"canary baked", f(2, "a"), "b", applied(now.Add(-11*time.Minute), "a"), true, ""},
		{"canary unhealthy", f(2, "a"), "b", unhealthy, false, "the canary a is unhealthy on c1"},
		{"canaryBake 0s: no bake", noBake, "b", applied(now, "a"), true, ""},
		{"canaryBake 0s: still healthy first", noBake, "b", unhealthy, false, "the canary a is unhealthy on c1"},
		{"a healthy heartbeat counts (the store lost the record)", f(1, ""), "b", beatOnly(true), true, ""},
		{"an unhealthy heartbeat does not", f(1, ""), "b", beatOnly(false), false, "waiting for host a to deploy c1 first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Turn(tc.fleet, tc.host, "c1", tc.snap, now)
			if tc.wantOK != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Turn = %q, want %q (ok %v)", got, tc.want, tc.wantOK)
			}
		})
	}
}

// memStore keeps heartbeats only: enough for Gate.beat.
type memStore struct {
	Store
	beats map[string]Health
}

func (m *memStore) Beat(_ context.Context, h Health, _ time.Duration) error {
	m.beats[h.Host] = h
	return nil
}

func (m *memStore) Snapshot(context.Context, []string, int) (Snapshot, error) {
	return Snapshot{}, nil
}

// TestBakeFromHeartbeatsAfterStoreLoss: when the store lost the canary's
// result (a restart without persistence), its bake counts from when it
// started running the commit healthy, which its heartbeats carry, not from
// the last heartbeat: else every heartbeat would start the bake again and
// the rollout would never go on.
func TestBakeFromHeartbeatsAfterStoreLoss(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	now := t0
	st := &memStore{beats: map[string]Health{}}
	g := &Gate{Host: "a", Now: func() time.Time { return now }}
	f := &state.Fleet{Hosts: []string{"a", "b"}, Parallel: 2, Canary: "a", CanaryBake: &state.Duration{Duration: 10 * time.Minute}}
	beat := func(at time.Time, err error) Health {
		now = at
		g.beat(context.Background(), st, f, agent.Revision{Hash: "c1"}, agent.Outcome{}, err)
		return st.beats["a"]
	}
	turn := func() string {
		h := st.beats["a"]
		return Turn(f, "b", "c1", Snapshot{Hosts: map[string]HostState{"a": {Health: &h}}}, now)
	}
	if h := beat(t0, nil); !h.Since.Equal(t0) {
		t.Fatalf("first healthy beat: Since = %v, want %v", h.Since, t0)
	}
	if h := beat(t0.Add(9*time.Minute), nil); !h.Since.Equal(t0) || !h.At.Equal(t0.Add(9*time.Minute)) {
		t.Fatalf("later beat: %+v, want Since %v", h, t0)
	}
	if got := turn(); !strings.Contains(got, "bakes c1 until 2026-01-01T12:10:00Z") {
		t.Fatalf("Turn at 9m = %q", got)
	}
	beat(t0.Add(11*time.Minute), nil)
	if got := turn(); got != "" {
		t.Fatalf("Turn at 11m = %q, want the bake over", got)
	}
	// A failed check starts the bake again from the next healthy one.
	if h := beat(t0.Add(12*time.Minute), errors.New("health check failed")); h.Healthy || !h.Since.IsZero() {
		t.Fatalf("unhealthy beat: %+v", h)
	}
	beat(t0.Add(13*time.Minute), nil)
	if got := turn(); !strings.Contains(got, "bakes c1 until 2026-01-01T12:23:00Z") {
		t.Fatalf("Turn after a failed check = %q", got)
	}
	// Another commit starts its own.
	now = t0.Add(14 * time.Minute)
	g.beat(context.Background(), st, f, agent.Revision{Hash: "c2"}, agent.Outcome{}, nil)
	if h := st.beats["a"]; h.Commit != "c2" || !h.Since.Equal(now) {
		t.Fatalf("beat on c2: %+v", h)
	}
}
