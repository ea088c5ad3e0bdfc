package reconciler

import (
	"fmt"
	"slices"
	"time"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// minRequests is how many requests a watch must see before it judges the
// error rate and the latency when the service sets none (a Desired not
// made from an env file): one failure in three requests is not a trend.
const minRequests = state.DefaultMinRequests

// watch is the watch of s's new color for d: its access log and the
// gates of its deploy settings.
func (pl *planner) watch(s state.DesiredService, d time.Duration) *Watch {
	dep := s.Deploy
	w := &Watch{For: d, LogPath: templates.LogPath(pl.logDir(s), pl.d.Env, s.Name), MaxErrorRate: dep.MaxErrorRate, MinRequests: dep.MinRequests,
		MaxLatency: dep.MaxLatency, Percentile: dep.LatencyPercentile}
	if w.MinRequests <= 0 {
		w.MinRequests = minRequests
	}
	return w
}

// Percentile is the p-th percentile (1-100, nearest rank) of times; 0
// for none.
func Percentile(times []time.Duration, p int) time.Duration {
	if len(times) == 0 {
		return 0
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// latencyBreach fails a watch whose color's upstream response times, at
// w.Percentile, are above w.MaxLatency, once w.MinRequests of them were
// seen; nil when w has no latency gate.
func latencyBreach(w *Watch, times []time.Duration) error {
	if w.MaxLatency <= 0 || len(times) < max(w.MinRequests, 1) {
		return nil
	}
	pct := w.Percentile
	if pct <= 0 {
		pct = 95
	}
	if got := Percentile(times, pct); got > w.MaxLatency {
		return fmt.Errorf("%w: p%d of the upstream response time of %d requests is %s, above maxLatency %s", ErrUnhealthy, pct, len(times), got.Round(time.Millisecond), w.MaxLatency)
	}
	return nil
}
