package memhost

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
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
// Call{"smoke", r.URL, ""}. A request with a WantBody is a route check
// (Call{"route", r.URL, r.WantBody}): it is answered as nginx answers
// templates.RoutePath, from the markers of the site whose file listens on
// r.URL's port, or as if there were none while MarkersUnseen is set.
func (h *Host) Smoke(ctx context.Context, r reconciler.SmokeRequest, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.WantBody == "" {
		return h.call(ctx, "smoke", r.URL, "")
	}
	if err := h.call(ctx, "route", r.URL, r.WantBody); err != nil {
		return err
	}
	got, ok := h.route(r.URL)
	if !ok {
		return fmt.Errorf("GET %s: status 404, want %d", r.URL, r.WantStatus)
	}
	if got != r.WantBody {
		return fmt.Errorf("GET %s answered %q, want %q", r.URL, got, r.WantBody)
	}
	return nil
}

// route is the answer of the route check at url: the routing of the
// site whose file listens on url's port. The caller holds h.mu.
func (h *Host) route(url string) (string, bool) {
	_, rest, _ := strings.Cut(url, "://")
	hostPort, _, _ := strings.Cut(rest, "/")
	port := hostPort[strings.LastIndex(hostPort, ":")+1:]
	for p, content := range h.files {
		if !templates.HasRoute(content) {
			continue
		}
		env, service, _, _, _, ok := templates.ParseHeader(content)
		if !ok || !listensOn(content, port) {
			continue
		}
		if h.MarkersUnseen {
			return string(state.Blue), true
		}
		k := siteKey(path.Dir(p), env, service)
		if c := h.canary[k]; c != "" {
			pct, col, _ := strings.Cut(c, " ")
			return pct + "% " + col, true
		}
		if h.markers[k] == state.Green {
			return string(state.Green), true
		}
		return string(state.Blue), true
	}
	return "", false
}

// listensOn reports whether an nginx file has a listen directive on port.
func listensOn(content []byte, port string) bool {
	for _, l := range strings.Split(string(content), "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(l), ";"))
		if len(f) < 2 || f[0] != "listen" {
			continue
		}
		if a := f[1]; a == port || strings.HasSuffix(a, ":"+port) {
			return true
		}
	}
	return false
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
		Snapshots: h, HealthChecks: h, Records: h, Clock: clock, Log: zap.NewNop(),
	}
}
