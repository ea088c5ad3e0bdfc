package reconciler

import (
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// The external tests (package reconciler_test) use memhost, which imports
// this package; these give them the planner's golden cases.

// TestKey is the hash key of the golden cases.
var TestKey = testKey

// GoldenCase is one golden case of the planner with its inputs.
type GoldenCase struct {
	Name     string
	Desired  *state.Desired
	Observed *state.Observed
}

// GoldenCases returns every case of TestDiff with its inputs, fresh
// copies on each call.
func GoldenCases(t *testing.T) []GoldenCase {
	t.Helper()
	var out []GoldenCase
	for _, tc := range diffCases() {
		d, o := tc.inputs(t)
		out = append(out, GoldenCase{Name: tc.name, Desired: d, Observed: o})
	}
	return out
}

// AtomicUpstreamOnly is an atomic release of every service of the golden
// env on a host where they run blue, rest-api being upstream only (a
// port, no listen).
func AtomicUpstreamOnly(t *testing.T) (*state.Desired, *state.Observed) {
	d := desired("c0ffee0000000000000000000000000000000001")
	d.Services[1].Listen = nil
	o := applied(t, d, state.Blue)
	d.Commit = "c0ffee0000000000000000000000000000000002"
	d.Release = state.ReleaseAtomic
	for i := range d.Services {
		d.Services[i].Spec.Image += "-2"
		o.ImageIDs[d.Services[i].Spec.Image] = "sha256:new" + d.Services[i].Name
	}
	d.Services[0].Deploy.Bake = time.Minute
	return d, o
}
