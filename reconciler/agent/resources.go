package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

// ResourceReader reads what an env's containers use from the engine; the
// docker runtime's Resources is one.
type ResourceReader func(ctx context.Context, env string) ([]state.Resources, error)

// ResourceCollector exposes per-container CPU, memory, restarts and
// health. It reads the engine at most once per interval, on a scrape,
// and serves the last reading to scrapes in between, so a busy scraper
// costs the engine nothing more; it never holds a stats stream open.
type ResourceCollector struct {
	env      string
	read     ResourceReader
	interval time.Duration
	timeout  time.Duration
	log      *zap.Logger

	cpu, mem, limit, restarts, healthy *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	last []state.Resources
}

// NewResourceCollector returns a collector of env's containers that reads
// them through read at most once per interval.
func NewResourceCollector(env string, read ResourceReader, interval time.Duration, log *zap.Logger) *ResourceCollector {
	labels := []string{"env", "service", "color"}
	return &ResourceCollector{
		env: env, read: read, interval: interval, timeout: 10 * time.Second, log: log,
		cpu: prometheus.NewDesc("reconciler_container_cpu_seconds_total",
			"CPU time the container used since it started.", labels, nil),
		mem: prometheus.NewDesc("reconciler_container_memory_bytes",
			"Memory the container uses, inactive page cache left out (as docker stats shows it).", labels, nil),
		limit: prometheus.NewDesc("reconciler_container_memory_limit_bytes",
			"The container's memory limit (the host's memory when it has none).", labels, nil),
		restarts: prometheus.NewDesc("reconciler_container_restarts_total",
			"Times the engine restarted the container (restart policy).", labels, nil),
		healthy: prometheus.NewDesc("reconciler_container_healthy",
			"1 when the container runs and is not restarting (and its image's HEALTHCHECK, if any, passes).", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ResourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.mem, c.limit, c.restarts, c.healthy} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ResourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.reading() {
		lv := []string{c.env, r.Service, string(r.Color)}
		healthy := 0.0
		if r.Healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(r.RestartCount), lv...)
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, healthy, lv...)
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(r.MemoryLimitBytes), lv...)
		if r.Running {
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, r.CPUSeconds, lv...)
			ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(r.MemoryBytes), lv...)
		}
	}
}

// reading returns the last reading, refreshed when it is older than the
// interval. A failed read keeps the previous one (and logs).
func (c *ResourceCollector) reading() []state.Resources {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.interval {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	rs, err := c.read(ctx, c.env)
	if err != nil {
		c.log.Warn("reading container resources", zap.Error(err))
		if rs == nil {
			return c.last
		}
	}
	c.at, c.last = time.Now(), rs
	return rs
}
