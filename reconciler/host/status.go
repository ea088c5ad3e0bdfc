package host

import (
	"context"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// ServiceStatus is one row of reconciler status: a service of the env file
// or of the host, and its live container.
type ServiceStatus struct {
	Service      string      `json:"service"`
	DesiredImage string      `json:"desiredImage,omitempty"`
	RunningImage string      `json:"runningImage,omitempty"`
	Color        state.Color `json:"color,omitempty"`
	Container    string      `json:"container,omitempty"`
	State        string      `json:"state"`
	Health       string      `json:"health"`
	Commit       string      `json:"commit,omitempty"`
	Since        time.Time   `json:"since,omitempty"`
	Others       []string    `json:"others,omitempty"` // other colors present (draining or leftover)
	// MemoryBytes is what the live container uses now; MemoryLimitBytes
	// its limit (the host's memory when it has none). 0 when unknown.
	MemoryBytes      int64 `json:"memoryBytes,omitempty"`
	MemoryLimitBytes int64 `json:"memoryLimitBytes,omitempty"`
	// Marker is the color the site's marker names, Routed the routing
	// nginx answers for it when asked (SiteRoute), and RouteMismatch is
	// set when they differ. Empty for a service without a listen address.
	Marker        state.Color `json:"marker,omitempty"`
	Routed        string      `json:"routed,omitempty"`
	RouteMismatch bool        `json:"routeMismatch,omitempty"`
}

// NameStatus is a service's name proxy and the color it forwards to.
type NameStatus struct {
	Service string      `json:"service"`
	Proxy   string      `json:"proxy"`
	State   string      `json:"state"`
	Color   state.Color `json:"color"`
}

// Status is what reconciler status shows of an environment.
type Status struct {
	Env      string          `json:"env"`
	Services []ServiceStatus `json:"services"`
	Names    []NameStatus    `json:"names"`
	// Warnings are what could not be read (memory use, name markers);
	// the rest of the status stands.
	Warnings []string `json:"-"`
}

// Status observes e's services on the host: for each service of the env
// file or with a container, its live container (state.Observed.Live), its
// health (one check on its published port), memory and the other colors;
// and where each name proxy forwards.
func (h *Host) Status(ctx context.Context, e *state.Env) (Status, error) {
	st := Status{Env: e.Environment, Names: []NameStatus{}}
	scope, err := h.EnvScope(e)
	if err != nil {
		return st, err
	}
	o, err := h.Observe(ctx, scope)
	if err != nil {
		return st, err
	}
	names := map[string]bool{}
	for n := range e.Services {
		names[n] = true
	}
	for _, c := range o.Containers {
		names[c.Service] = true
	}
	// Memory is a nicety: status still answers when stats do not.
	res, err := h.Runtime.Resources(ctx, e.Environment)
	if err != nil {
		st.Warnings = append(st.Warnings, "reading memory use: "+err.Error())
	}
	routes := map[string]SiteRoute{}
	for _, r := range h.SiteRoutes(ctx, e, o) {
		routes[r.Service] = r
		if r.Err != "" {
			st.Warnings = append(st.Warnings, "asking nginx where "+r.Service+" goes: "+r.Err)
		}
	}
	for _, name := range state.SortedKeys(names) {
		svc, desired := e.Services[name]
		r := ServiceStatus{Service: name, State: "absent", Health: "-"}
		switch {
		case desired:
			r.DesiredImage = svc.Image
		case len(e.Services) > 0:
			r.DesiredImage = "(not in env file)"
		}
		cur := o.Live(name)
		for _, c := range o.Containers {
			if c.Service == name && (cur == nil || c.Name != cur.Name) {
				r.Others = append(r.Others, c.Name)
			}
		}
		if cur != nil {
			r.Color, r.Container, r.State = cur.Color, cur.Name, cur.State
			r.RunningImage, r.Commit, r.Since = cur.Spec.Image, cur.Commit, cur.StartedAt
			r.Health = h.health(ctx, cur, svc, desired)
			for _, u := range res {
				if u.Name == cur.Name && u.Running {
					r.MemoryBytes, r.MemoryLimitBytes = u.MemoryBytes, u.MemoryLimitBytes
				}
			}
		}
		if rt, ok := routes[name]; ok {
			r.Marker, r.Routed, r.RouteMismatch = rt.Marker, rt.Routed, rt.Mismatch
		}
		st.Services = append(st.Services, r)
	}
	for _, p := range o.NameProxies {
		st.Names = append(st.Names, NameStatus{Service: p.Service, Proxy: p.Name, State: p.State, Color: o.Names[p.Service]})
	}
	return st, nil
}

// health is "down", "running" (a worker), "healthy" or "unhealthy" (one
// check of the service's health path on the published port).
func (h *Host) health(ctx context.Context, c *state.Container, svc state.Service, desired bool) string {
	switch {
	case !c.Running():
		return "down"
	case c.HostPort == 0:
		return "running"
	}
	path, timeout := state.DefaultHealthPath, state.DefaultTimeout
	if desired {
		path, timeout = svc.Health.Path, svc.Health.Timeout.D()
	}
	if err := h.Prober.Check(ctx, c.HostPort, path, timeout); err != nil {
		return "unhealthy"
	}
	return "healthy"
}
