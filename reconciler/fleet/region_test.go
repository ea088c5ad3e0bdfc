package fleet_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/fleet/redisstore"
	"github.com/developer-mesh/reconciler/state"
)

// TestRegionsInOrder: two regions, each an env with its own fleet and its
// own Redis; the second (fleet.after: the first) starts a commit only
// after the first has it healthy past afterBake, and a halt in the first
// keeps the second on the commit it runs.
func TestRegionsInOrder(t *testing.T) {
	ra, rb := testenv.StartRedis(t, false), testenv.StartRedis(t, false)
	envA, envB := "i18b-use1", "i18b-euw1"
	const bake = 2 * time.Second
	w := &world{fail: map[string]bool{"a1 c2": true}, block: map[string]chan struct{}{}}
	release := make(chan struct{})
	w.block["a1 c1"] = release
	w.setTip("c1")

	envOf := map[string]*state.Env{
		envA: fleetEnv(envA, ra.URL(), []string{"a1"}, 3*time.Second),
		envB: fleetEnv(envB, rb.URL(), []string{"b1"}, 3*time.Second),
	}
	envOf[envB].Fleet.After, envOf[envB].Fleet.AfterBake = envA, &state.Duration{Duration: bake}
	redisOf := map[string]*testenv.Redis{envA: ra, envB: rb}

	ga := w.gate(ra, envA, "a1", []string{"a1"}, 3*time.Second)
	gb := w.gate(rb, envB, "b1", []string{"b1"}, 3*time.Second)
	gb.Load = func(agent.Revision) (*state.Env, error) { return envOf[envB], nil }
	gb.LoadEnv = func(_ agent.Revision, env string) (*state.Env, error) { return envOf[env], nil }
	gb.OpenEnv = func(_ context.Context, e *state.Env) (fleet.Store, error) {
		r := redisOf[e.Environment]
		return redisstore.Open(e.Environment, redisstore.Options{URL: e.Fleet.Store, Password: r.Password, TLS: r.TLS})
	}
	// B first: the order comes from A's store, not from timing.
	b := w.run(t, gb)
	a := w.run(t, ga)

	waiting := func(g *fleet.Gate, want string) func() bool {
		return func() bool { return strings.Contains(g.Status().Waiting, want) }
	}
	waitFor(t, "A deploying c1", func() bool { return w.index("a1 c1 start") >= 0 })
	waitFor(t, "B waiting for A", waiting(gb, "waiting for region i18b-use1 to deploy c1 first"))
	if w.index("b1 c1 start") >= 0 {
		t.Fatal("b1 started c1 while a1 was deploying it")
	}
	close(release)
	waitFor(t, "c1 in A", applied(a, "c1"))
	// The bake counts from A's recorded result, which is written before
	// the agent reports c1 applied: a time taken here would be late.
	sa, err := redisstore.Open(envA, redisstore.Options{URL: ra.URL(), Password: ra.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	snapA, err := sa.Snapshot(context.Background(), []string{"a1"}, 1)
	if err != nil || snapA.Hosts["a1"].Applied.Commit != "c1" {
		t.Fatalf("A's store: %+v, %v", snapA.Hosts["a1"], err)
	}
	done := snapA.Hosts["a1"].Applied.At
	waitFor(t, "B waiting for A's bake", waiting(gb, "region i18b-use1 bakes c1 until"))
	if w.index("b1 c1 start") >= 0 {
		t.Fatal("b1 started c1 before A's bake ended")
	}
	waitFor(t, "c1 in B", applied(b, "c1"))
	if took := time.Since(done); took < bake {
		t.Fatalf("B applied c1 %s after A did; want at least afterBake (%s)", took, bake)
	}
	if w.index("b1 c1 start") < w.index("a1 c1 done") {
		t.Fatalf("order: %v", w.events)
	}

	// A fails c2: its halt keeps B on c1.
	w.setTip("c2")
	waitFor(t, "A failing c2", func() bool { return w.index("a1 c2 failed") >= 0 })
	waitFor(t, "B halted by A", waiting(gb, "the rollout of c2 is halted in i18b-use1: host a1 failed it"))
	if w.index("b1 c2 start") >= 0 || b.Status().AppliedCommit != "c1" {
		t.Fatalf("B started c2 after A failed it: %v", w.events)
	}
}

// TestRegionTurnRefusesWhatItCannotSee: without the other env's file, its
// fleet, or with a loop, the region waits and says why.
func TestRegionTurnRefusesWhatItCannotSee(t *testing.T) {
	f := &state.Fleet{Hosts: []string{"a1", "a2"}}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run := func(at time.Time) fleet.HostState {
		return fleet.HostState{Applied: fleet.Result{Commit: "c1", At: at}, Health: &fleet.Health{Commit: "c1", Healthy: true, At: at}}
	}
	for _, tc := range []struct {
		name string
		s    fleet.Snapshot
		want string
	}{
		{"one host not there yet", fleet.Snapshot{Hosts: map[string]fleet.HostState{"a1": run(now.Add(-time.Hour))}}, "waiting for region use1 to deploy c1 first (host a2)"},
		{"unhealthy", fleet.Snapshot{Hosts: map[string]fleet.HostState{"a1": run(now.Add(-time.Hour)),
			"a2": {Applied: fleet.Result{Commit: "c1"}, Health: &fleet.Health{Commit: "c1", Healthy: false}}}}, "waiting for region use1 to report c1 healthy (host a2)"},
		{"no heartbeat", fleet.Snapshot{Hosts: map[string]fleet.HostState{"a1": run(now.Add(-time.Hour)),
			"a2": {Applied: fleet.Result{Commit: "c1"}}}}, "report c1 healthy (host a2)"},
		{"baking from the last host", fleet.Snapshot{Hosts: map[string]fleet.HostState{"a1": run(now.Add(-time.Hour)), "a2": run(now.Add(-time.Minute))}}, "region use1 bakes c1 until 2026-01-01T12:04:00Z"},
		{"baked", fleet.Snapshot{Hosts: map[string]fleet.HostState{"a1": run(now.Add(-time.Hour)), "a2": run(now.Add(-5 * time.Minute))}}, ""},
		{"halted", fleet.Snapshot{Halt: &fleet.Halt{Commit: "c1", Host: "a2", Error: "boom"}}, "halted in use1: host a2 failed it (boom)"},
		// The store lost the results: the bake counts from when each host
		// started running c1 healthy (Since), not from its last heartbeat.
		{"baked, from heartbeats only", fleet.Snapshot{Hosts: map[string]fleet.HostState{
			"a1": {Health: &fleet.Health{Commit: "c1", Healthy: true, At: now, Since: now.Add(-time.Hour)}},
			"a2": {Health: &fleet.Health{Commit: "c1", Healthy: true, At: now, Since: now.Add(-6 * time.Minute)}}}}, ""},
		{"baking, from heartbeats only", fleet.Snapshot{Hosts: map[string]fleet.HostState{
			"a1": {Health: &fleet.Health{Commit: "c1", Healthy: true, At: now, Since: now.Add(-time.Hour)}},
			"a2": {Health: &fleet.Health{Commit: "c1", Healthy: true, At: now, Since: now.Add(-2 * time.Minute)}}}}, "region use1 bakes c1 until 2026-01-01T12:03:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fleet.RegionTurn("use1", f, "c1", 5*time.Minute, tc.s, now)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}

	g := &fleet.Gate{Env: "euw1", Host: "b1",
		Load: func(agent.Revision) (*state.Env, error) {
			return &state.Env{Environment: "euw1", Fleet: &state.Fleet{Store: "redis://127.0.0.1:1", Hosts: []string{"b1"}, Parallel: 1, After: "use1"}}, nil
		},
		Open: func(context.Context, *state.Env) (fleet.Store, error) { return emptyStore{}, nil },
		LoadEnv: func(agent.Revision, string) (*state.Env, error) {
			return &state.Env{Environment: "use1", Fleet: &state.Fleet{Hosts: []string{"a1"}, After: "euw1"}}, nil
		},
		OpenEnv: func(context.Context, *state.Env) (fleet.Store, error) { return emptyStore{}, nil },
		Inner: func(context.Context, agent.Revision, agent.Mode) (agent.Outcome, error) {
			t.Fatal("deployed through a loop")
			return agent.Outcome{}, nil
		}}
	_, err := g.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy)
	if err == nil || !strings.Contains(err.Error(), "fleet.after: envs/use1.yaml at c1 waits for this env in turn (fleet.after: euw1): a loop") {
		t.Fatalf("loop: %v", err)
	}
	g.LoadEnv = func(agent.Revision, string) (*state.Env, error) { return &state.Env{Environment: "use1"}, nil }
	if _, err := g.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy); err == nil || !strings.Contains(err.Error(), "has no fleet section") {
		t.Fatalf("no fleet: %v", err)
	}
}

// emptyStore is a store with nothing in it that grants nothing.
type emptyStore struct{}

func (emptyStore) Acquire(context.Context, string, int, time.Duration) (fleet.Lease, error) {
	return fleet.Lease{}, fleet.ErrHeld
}
func (emptyStore) Renew(context.Context, fleet.Lease, time.Duration) error { return fleet.ErrLost }
func (emptyStore) Release(context.Context, fleet.Lease) error              { return nil }
func (emptyStore) Record(context.Context, fleet.Lease, fleet.Result) error { return fleet.ErrLost }
func (emptyStore) Beat(context.Context, fleet.Health, time.Duration) error { return nil }
func (emptyStore) Snapshot(context.Context, []string, int) (fleet.Snapshot, error) {
	return fleet.Snapshot{Hosts: map[string]fleet.HostState{}}, nil
}
