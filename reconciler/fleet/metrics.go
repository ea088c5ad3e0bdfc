package fleet

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports a Gate's view of its fleet as Prometheus metrics, read
// from Gate.Status at each scrape (no store round trip).
type Collector struct {
	env  string
	gate *Gate

	storeUp, waiting, halted, leaseHeld, hostHealthy, hostApplied *prometheus.Desc
}

// NewCollector returns the collector of g in env.
func NewCollector(env string, g *Gate) *Collector {
	e, eh := []string{"env"}, []string{"env", "host"}
	return &Collector{env: env, gate: g,
		storeUp:     prometheus.NewDesc("reconciler_fleet_store_up", "1 when the coordination store answered the last request, else 0 (no new commit deploys).", e, nil),
		waiting:     prometheus.NewDesc("reconciler_fleet_waiting", "1 while this host waits to deploy the desired commit (its turn, a halt, the store).", e, nil),
		halted:      prometheus.NewDesc("reconciler_fleet_halted", "1 while the rollout of the desired commit is halted by another host's failure.", e, nil),
		leaseHeld:   prometheus.NewDesc("reconciler_fleet_lease_held", "1 while this host holds the env's rollout lease.", e, nil),
		hostHealthy: prometheus.NewDesc("reconciler_fleet_host_healthy", "Each host's last heartbeat: 1 healthy, 0 unhealthy, absent when it expired.", eh, nil),
		hostApplied: prometheus.NewDesc("reconciler_fleet_host_applied_commit", "1 for the commit each host last deployed successfully, as the store holds it.", []string{"env", "host", "commit"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.storeUp, c.waiting, c.halted, c.leaseHeld, c.hostHealthy, c.hostApplied} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.gate.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	ch <- prometheus.MustNewConstMetric(c.storeUp, prometheus.GaugeValue, b(s.StoreError == ""), c.env)
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, b(s.Waiting != ""), c.env)
	ch <- prometheus.MustNewConstMetric(c.halted, prometheus.GaugeValue, b(s.Halted), c.env)
	ch <- prometheus.MustNewConstMetric(c.leaseHeld, prometheus.GaugeValue, b(s.Lease != nil), c.env)
	if s.Fleet == nil {
		return
	}
	for _, h := range s.Hosts {
		hs := s.Fleet.Hosts[h]
		if hs.Health != nil {
			ch <- prometheus.MustNewConstMetric(c.hostHealthy, prometheus.GaugeValue, b(hs.Health.Healthy), c.env, h)
		}
		if hs.Applied.Commit != "" {
			ch <- prometheus.MustNewConstMetric(c.hostApplied, prometheus.GaugeValue, 1, c.env, h, hs.Applied.Commit)
		}
	}
}
