package memhost

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
)

var (
	_ reconciler.Prober       = (*Host)(nil)
	_ reconciler.Snapshotter  = (*Host)(nil)
	_ reconciler.HealthChecks = (*Host)(nil)
	_ reconciler.Clock        = (*Clock)(nil)
)

// Check implements reconciler.Prober: it passes when a running container
// of the host publishes port, and fails as a refused connection
// otherwise. Fault sees it as Call{"check", port, path}.
func (h *Host) Check(ctx context.Context, port int, path string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "check", strconv.Itoa(port), path); err != nil {
		return err
	}
	for _, e := range h.containers {
		if e.env != "" && e.c.HostPort == port && e.c.Running() {
			return nil
		}
	}
	return fmt.Errorf("GET 127.0.0.1:%d%s: connection refused", port, path)
}

// Smoke implements reconciler.Prober: it passes unless Fault fails
// Call{"smoke", r.URL, ""}.
func (h *Host) Smoke(ctx context.Context, r reconciler.SmokeRequest, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.call(ctx, "smoke", r.URL, "")
}

// Snapshot implements reconciler.Snapshotter: it records the call.
func (h *Host) Snapshot(ctx context.Context, instance, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.call(ctx, "snapshot", instance, id)
}

// UpdateHealthCheck implements reconciler.HealthChecks: it records the
// call and reports a change.
func (h *Host) UpdateHealthCheck(ctx context.Context, id, path string, port int) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "health-check", id, path+":"+strconv.Itoa(port)); err != nil {
		return false, err
	}
	return true, nil
}

// Clock is a reconciler.Clock whose time moves only when Sleep is called:
// Sleep adds its duration to Now at once. A test runs hours of health
// waits, watches and drains in no time, and can read what was waited.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
	// OnSleep, when set, is called after each Sleep with the new time,
	// without the clock's lock: a test makes things happen meanwhile.
	OnSleep func(now time.Time)
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep returns ctx.Err() when ctx is done; else it moves the clock d
// ahead and returns nil.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	now, f := c.now, c.OnSleep
	c.mu.Unlock()
	if f != nil {
		f(now)
	}
	return nil
}

// Slept returns the durations of the Sleep calls so far, in order.
func (c *Clock) Slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}

// Applier returns an Applier whose runtime, edge, prober, journal, names,
// snapshots and health checks are all h, timed by clock, logging nothing.
func (h *Host) Applier(clock reconciler.Clock) *reconciler.Applier {
	return &reconciler.Applier{
		Runtime: h.Runtime(), Edge: h.Edge(), Prober: h, Journal: h, Names: h,
		Snapshots: h, HealthChecks: h, Clock: clock, Log: zap.NewNop(),
	}
}
