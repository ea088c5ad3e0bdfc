package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// TestPlanDuration: the worst case adds each step's budget, counts steps
// that run together at the longest, and leaves pulls out (and says so).
func TestPlanDuration(t *testing.T) {
	h := &state.HealthParams{Interval: 2 * time.Second, Timeout: time.Second, StartTimeout: 30 * time.Second}
	route := &SiteChange{Route: &SmokeRequest{URL: "http://127.0.0.1:8000/x", WantBody: "green"}}
	watch := func(d time.Duration) Step {
		return Step{Action: ActWatch, Health: h, Watch: &Watch{For: d}}
	}
	p := &Plan{Env: "prod", Changes: []Change{
		{Kind: Pull, Steps: []Step{{Action: ActPull, Image: "a:v2"}}},
		{Kind: Migrate, Steps: []Step{
			{Action: ActSnapshot, Timeout: 90 * time.Second},
			{Action: ActMigrate, Container: &ContainerSpec{Timeout: time.Minute}},
			{Action: ActRecord},
		}},
		{Kind: Release, Steps: []Step{
			{Action: ActStart}, {Action: ActStart},
			{Action: ActTogether, Steps: []Step{{Action: ActWaitHealthy, Health: h}, {Action: ActSettle, Health: h}}},
			{Action: ActSwitch, Site: route},
			{Action: ActSwitch, Site: &SiteChange{}}, // upstream only: no route check
			{Action: ActSmoke, Smoke: &SmokeRequest{URL: "http://127.0.0.1:8000/health"}},
			{Action: ActTogether, Steps: []Step{watch(5 * time.Minute), watch(4 * time.Minute)}},
			{Action: ActTogether, Steps: []Step{{Action: ActDrain, Drain: 30 * time.Second, Site: route}, {Action: ActRemove}}},
		}},
	}}
	want := 90*time.Second + time.Minute + // snapshot, job
		2*StartAllowance + (30+2+1)*time.Second + // starts, waits together
		RouteTimeout + smokeTimeout + // one verified switch, the smoke
		5*time.Minute + time.Second + // bakes together
		30*time.Second + StopTimeout + RouteTimeout // drains together
	if got := p.Duration(); got != want {
		t.Errorf("Duration = %s, want %s", got, want)
	}
	line := p.DurationLine()
	if !strings.HasPrefix(line, "Duration: ≤ "+FormatDuration(want)+" (worst case") || !strings.HasSuffix(line, "plus 1 image pull(s)") {
		t.Errorf("line %q", line)
	}
	if (&Plan{}).DurationLine() != "" {
		t.Error("an empty plan has a duration line")
	}
	if got := FormatDuration(9*time.Minute + 33*time.Second + time.Millisecond); got != "9m34s" {
		t.Errorf("FormatDuration rounds to %s, want 9m34s (up)", got)
	}
}
