package fleet

import (
	"flag"
	"testing"

	"github.com/developer-mesh/reconciler/internal/metrics"
	"github.com/developer-mesh/reconciler/internal/testenv"
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
