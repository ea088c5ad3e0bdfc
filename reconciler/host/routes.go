package host

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// Routes sends requests to nginx over a site's own address.
// httpprobe.Prober implements it.
type Routes interface {
	// Get sends r (its WantStatus and WantBody are not checked) and
	// returns the answer's status and body, surrounding white space
	// trimmed.
	Get(ctx context.Context, r reconciler.SmokeRequest, timeout time.Duration) (status int, body string, err error)
}

// routeTimeout bounds each request SiteRoutes sends.
const routeTimeout = 2 * time.Second

// SiteRoute is what nginx does for one site with a listen address, asked
// through nginx: the routing its workers chose next to what the markers
// on disk say.
type SiteRoute struct {
	Service string `json:"service"`
	// Marker is the color the site's main marker names (state.Site.Live).
	Marker state.Color `json:"marker"`
	// Routed is nginx's answer at templates.RoutePath: "blue", "green",
	// or "<percent>% <color>" during a canary step; "" when nginx could
	// not be asked (Err says why).
	Routed string `json:"routed,omitempty"`
	// Mismatch is set when Routed is a color other than Marker.
	Mismatch bool `json:"mismatch,omitempty"`
	// Status is the status of the site's health path through nginx; 0
	// when it was not answered.
	Status int    `json:"status,omitempty"`
	Err    string `json:"error,omitempty"`
}

// SiteRequest is the GET of path through nginx's address of the service
// name of e; false for a service without a listen address.
func SiteRequest(name string, s state.Service, path string, status int) (reconciler.SmokeRequest, bool) {
	if s.Listen == "" || s.ContainerPort == 0 {
		return reconciler.SmokeRequest{}, false
	}
	l, err := state.ParseListen(s.Listen)
	if err != nil {
		return reconciler.SmokeRequest{}, false
	}
	return reconciler.SiteRequest(state.DesiredService{Name: name, Listen: &l, ServerName: s.ServerName}, path, status), true
}

// SiteRoutes asks nginx, for each site of o whose service in e has a
// listen address, which color it routes to, and GETs the service's health
// path through it. A site whose file predates the route check is left
// out. Nil when h has no Routes.
func (h *Host) SiteRoutes(ctx context.Context, e *state.Env, o *state.Observed) []SiteRoute {
	if h.Routes == nil {
		return nil
	}
	var out []SiteRoute
	for _, site := range o.Sites {
		svc, ok := e.Services[site.Service]
		if !ok || !templates.HasRoute(site.Content) {
			continue
		}
		req, ok := SiteRequest(site.Service, svc, templates.RoutePath, 200)
		if !ok {
			continue
		}
		r := SiteRoute{Service: site.Service, Marker: site.Live}
		status, body, err := h.Routes.Get(ctx, req, routeTimeout)
		switch {
		case err != nil:
			r.Err = err.Error()
		case status != 200:
			r.Err = fmt.Sprintf("GET %s: status %d, want 200", req.URL, status)
		default:
			r.Routed = body
			r.Mismatch = !strings.Contains(body, "%") && body != string(site.Live)
		}
		path := svc.Health.Path
		if path == "" {
			path = state.DefaultHealthPath
		}
		if hreq, ok := SiteRequest(site.Service, svc, path, 200); ok {
			if status, _, err := h.Routes.Get(ctx, hreq, routeTimeout); err == nil {
				r.Status = status
			}
		}
		out = append(out, r)
	}
	return out
}
