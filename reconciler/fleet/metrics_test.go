package fleet

import (
	"context"
	"flag"
	"testing"

	"github.com/developer-mesh/reconciler/internal/metrics"
	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/state"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// render returns c's metrics in the text format.
func render(t *testing.T, c *Collector) string {
	t.Helper()
	reg := metrics.NewRegistry()
	reg.MustRegister(c)
	return string(reg.AppendText(nil))
}

// TestCollectorGolden: the fleet metrics keep their names, types, HELP
// texts and labels (testdata/metrics.golden): dashboards and alert rules
// depend on them. A host without heartbeat has no health series, one
// without a success no applied-commit series.
func TestCollectorGolden(t *testing.T) {
	g := &Gate{Env: "prod", Host: "b"}
	g.st = Status{StoreError: "", Waiting: "turn of a", Lease: nil, Hosts: []string{"b", "a", "c"},
		Fleet: &Snapshot{Hosts: map[string]HostState{
			"a": {Applied: Result{Commit: "c1"}, Health: &Health{Healthy: true}},
			"b": {Health: &Health{Healthy: false}},
			"c": {Applied: Result{Commit: "c0"}},
		}}}
	got := render(t, NewCollector("prod", g))
	testenv.Golden(t, "testdata/metrics.golden", []byte(got), *update)
}

// TestNoFleetNoMetrics: an env without a fleet section (here one whose
// fleet was removed at the new commit) has no store: the agent exports no
// fleet series (reconciler_fleet_store_up 1 said a store answered) and its
// status keeps no fleet of an older commit.
func TestNoFleetNoMetrics(t *testing.T) {
	g := &Gate{Env: "solo", Host: "h1",
		Load:  func(agent.Revision) (*state.Env, error) { return &state.Env{Environment: "solo"}, nil },
		Inner: func(context.Context, agent.Revision, agent.Mode) (agent.Outcome, error) { return agent.Outcome{}, nil }}
	g.st = Status{Waiting: "turn of a", Hosts: []string{"a", "h1"}, Fleet: &Snapshot{Hosts: map[string]HostState{}}}
	if _, err := g.Sync(context.Background(), agent.Revision{Hash: "c2"}, agent.Deploy); err != nil {
		t.Fatal(err)
	}
	if got := render(t, NewCollector("solo", g)); got != "" {
		t.Errorf("metrics of an env without a fleet:\n%s", got)
	}
	if s := g.Status(); s.Fleet != nil || s.Waiting != "" || len(s.Hosts) != 0 {
		t.Errorf("status %+v, want no fleet", s)
	}
}
