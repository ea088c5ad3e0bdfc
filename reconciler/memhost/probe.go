package memhost

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
)

var (
	_ reconciler.Prober       = (*Host)(nil)
	_ reconciler.Snapshotter  = (*Host)(nil)
	_ reconciler.HealthChecks = (*Host)(nil)
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

// Applier returns an Applier whose runtime, edge, prober, journal, names,
// snapshots and health checks are all h, timed by clock, logging nothing.
func (h *Host) Applier(clock reconciler.Clock) *reconciler.Applier {
	return &reconciler.Applier{
		Runtime: h.Runtime(), Edge: h.Edge(), Prober: h, Journal: h, Names: h,
		Snapshots: h, HealthChecks: h, Clock: clock, Log: zap.NewNop(),
	}
}
