package agent

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/metrics"
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

	cpu, mem, limit, restarts, healthy *metrics.Desc

	mu   sync.Mutex
	at   time.Time
	last []state.Resources
}

// NewResourceCollector returns a collector of env's containers that reads
// them through read at most once per interval.
func NewResourceCollector(env string, read ResourceReader, interval time.Duration, log *zap.Logger) *ResourceCollector {
	labels := []string{"env", "service", "color"}
	counter, gauge := metrics.CounterType, metrics.GaugeType
	return &ResourceCollector{
		env: env, read: read, interval: interval, timeout: 10 * time.Second, log: log,
		cpu: metrics.NewDesc("reconciler_container_cpu_seconds_total",
			"CPU time the container used since it started.", counter, labels...),
		mem: metrics.NewDesc("reconciler_container_memory_bytes",
			"Memory the container uses, inactive page cache left out (as docker stats shows it).", gauge, labels...),
		limit: metrics.NewDesc("reconciler_container_memory_limit_bytes",
			"The container's memory limit (the host's memory when it has none).", gauge, labels...),
		restarts: metrics.NewDesc("reconciler_container_restarts_total",
			"Times the engine restarted the container (restart policy).", counter, labels...),
		healthy: metrics.NewDesc("reconciler_container_healthy",
			"1 when the container runs and is not restarting (and its image's HEALTHCHECK, if any, passes).", gauge, labels...),
	}
}

// Describe implements metrics.Collector.
func (c *ResourceCollector) Describe() []*metrics.Desc {
	return []*metrics.Desc{c.cpu, c.mem, c.limit, c.restarts, c.healthy}
}

// Collect implements metrics.Collector.
func (c *ResourceCollector) Collect(s *metrics.Sink) {
	for _, r := range c.reading() {
		lv := []string{c.env, r.Service, string(r.Color)}
		healthy := 0.0
		if r.Healthy {
			healthy = 1
		}
		s.Add(c.restarts, float64(r.RestartCount), lv...)
		s.Add(c.healthy, healthy, lv...)
		s.Add(c.limit, float64(r.MemoryLimitBytes), lv...)
		if r.Running {
			s.Add(c.cpu, r.CPUSeconds, lv...)
			s.Add(c.mem, float64(r.MemoryBytes), lv...)
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
