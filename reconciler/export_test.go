package reconciler

import (
	"testing"

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
