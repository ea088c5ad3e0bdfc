package fleet

import (
	"github.com/developer-mesh/reconciler/internal/metrics"
)

// Collector exports a Gate's view of its fleet as Prometheus metrics, read
// from Gate.Status at each scrape (no store round trip).
type Collector struct {
	env  string
	gate *Gate

	storeUp, waiting, halted, leaseHeld, hostHealthy, hostApplied *metrics.Desc
}

// NewCollector returns the collector of g in env.
func NewCollector(env string, g *Gate) *Collector {
	e, eh, gauge := []string{"env"}, []string{"env", "host"}, metrics.GaugeType
	return &Collector{env: env, gate: g,
		storeUp:     metrics.NewDesc("reconciler_fleet_store_up", "1 when the coordination store answered the last request, else 0 (no new commit deploys).", gauge, e...),
		waiting:     metrics.NewDesc("reconciler_fleet_waiting", "1 while this host waits to deploy the desired commit (its turn, a halt, the store).", gauge, e...),
		halted:      metrics.NewDesc("reconciler_fleet_halted", "1 while the rollout of the desired commit is halted by another host's failure.", gauge, e...),
		leaseHeld:   metrics.NewDesc("reconciler_fleet_lease_held", "1 while this host holds the env's rollout lease.", gauge, e...),
		hostHealthy: metrics.NewDesc("reconciler_fleet_host_healthy", "Each host's last heartbeat: 1 healthy, 0 unhealthy, absent when it expired.", gauge, eh...),
		hostApplied: metrics.NewDesc("reconciler_fleet_host_applied_commit", "1 for the commit each host last deployed successfully, as the store holds it.", gauge, []string{"env", "host", "commit"}...),
	}
}

// Describe implements metrics.Collector.
func (c *Collector) Describe() []*metrics.Desc {
	return []*metrics.Desc{c.storeUp, c.waiting, c.halted, c.leaseHeld, c.hostHealthy, c.hostApplied}
}

// Collect implements metrics.Collector.
func (c *Collector) Collect(sink *metrics.Sink) {
	s := c.gate.Status()
	// As /status: an env without a fleet has no store to report on.
	if s.Fleet == nil && s.StoreError == "" && s.Waiting == "" && s.Lease == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	sink.Add(c.storeUp, b(s.StoreError == ""), c.env)
	sink.Add(c.waiting, b(s.Waiting != ""), c.env)
	sink.Add(c.halted, b(s.Halted), c.env)
	sink.Add(c.leaseHeld, b(s.Lease != nil), c.env)
	if s.Fleet == nil {
		return
	}
	for _, h := range s.Hosts {
		hs := s.Fleet.Hosts[h]
		if hs.Health != nil {
			sink.Add(c.hostHealthy, b(hs.Health.Healthy), c.env, h)
		}
		if hs.Applied.Commit != "" {
			sink.Add(c.hostApplied, 1, c.env, h, hs.Applied.Commit)
		}
	}
}
