package nginx

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// TestTrafficUpstreamTimes: Traffic reads each request's upstream time
// from the ut= field (summed over the upstreams tried), skips requests
// nginx answered itself and lines written before the field existed.
func TestTrafficUpstreamTimes(t *testing.T) {
	log := filepath.Join(t.TempDir(), "site.log")
	lines := "" +
		"1700000000.001 green 200 0.013 200 ut=0.012\n" +
		"1700000000.002 green 502 0.020 502, 200 ut=0.010, 0.005\n" +
		"1700000000.003 green 200 0.001 - ut=-\n" +
		"1700000000.004 blue 200 0.300 200 ut=0.300\n" +
		"1700000000.005 green 200 0.050 200\n" +
		"1700000000.006 green 200 0.040 200 ut=0.030 : 0.002\n"
	if err := os.WriteFile(log, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, next, err := New("", "", nil).Traffic(context.Background(), log, 0, state.Green)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Requests != 5 || tr.Errors != 1 || next != int64(len(lines)) {
		t.Errorf("traffic %+v next %d, want 5 requests, 1 error, next %d", tr, next, len(lines))
	}
	ms := time.Millisecond
	if want := []time.Duration{12 * ms, 15 * ms, 32 * ms}; !slices.Equal(tr.Times, want) {
		t.Errorf("times %v, want %v", tr.Times, want)
	}
}
