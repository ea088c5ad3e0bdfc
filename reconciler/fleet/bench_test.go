package fleet_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
)

// BenchmarkRollout compares, in one run, a three-host rollout through the
// fleet (real Redis, real agent loops polling every Interval, each host's
// deploy a fixed Deploy of simulated work) with the same three deploys run
// one after the other without a fleet: the difference is what the ordering
// costs (store round trips, and the wait of a host for its next poll).
//
//	go test -run '^$' -bench Rollout ./reconciler/fleet/
//
// bench/fleet.sh runs the real one instead (internal/fleethosts: three hosts, real deploys).
func BenchmarkRollout(b *testing.B) {
	const deploy = 500 * time.Millisecond
	for _, interval := range []time.Duration{200 * time.Millisecond, time.Second} {
		b.Run("single-host-deploys-x3/interval="+interval.String(), func(b *testing.B) {
			start := time.Now()
			for range b.N {
				for range 3 {
					time.Sleep(deploy) // the deploy's simulated work
				}
			}
			b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/rollout")
		})
		b.Run("fleet-rollout-3-hosts/interval="+interval.String(), func(b *testing.B) {
			r := testenv.StartRedis(b, false)
			var total time.Duration
			for i := range b.N {
				env := "i18-bench-" + strconv.Itoa(i)
				hosts := []string{"h1", "h2", "h3"}
				w := &world{}
				w.setTip("c1")
				ctx, cancel := context.WithCancel(context.Background())
				var agents []*agent.Agent
				done := make(chan struct{}, 3)
				start := time.Now()
				for _, h := range hosts {
					g := w.gate(r, env, h, hosts, 3*time.Second)
					inner := g.Inner
					g.Inner = func(ctx context.Context, rev agent.Revision, mode agent.Mode) (agent.Outcome, error) {
						if mode == agent.Deploy {
							time.Sleep(deploy) // the deploy's simulated work
						}
						return inner(ctx, rev, mode)
					}
					a := agent.New(agent.Config{Env: env, Interval: interval, MaxBackoff: interval,
						Fetch: func(context.Context) (agent.Revision, error) { return agent.Revision{Hash: "c1"}, nil },
						Sync:  g.Sync})
					agents = append(agents, a)
					go func() { _ = a.Run(ctx); done <- struct{}{} }()
				}
				for _, a := range agents {
					for a.Status().AppliedCommit != "c1" {
						time.Sleep(5 * time.Millisecond) // polling the agent
					}
				}
				total += time.Since(start)
				cancel()
				for range agents {
					<-done
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/rollout")
		})
	}
}
