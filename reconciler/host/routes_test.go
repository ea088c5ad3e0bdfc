package host

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// fakeRoutes answers nginx's route check with routed and the health path
// with status.
type fakeRoutes struct {
	routed string
	status int
}

func (f *fakeRoutes) Get(_ context.Context, r reconciler.SmokeRequest, _ time.Duration) (int, string, error) {
	if strings.HasSuffix(r.URL, templates.RoutePath) {
		return 200, f.routed, nil
	}
	return f.status, "", nil
}

// healthProber passes or fails every health check of a container.
type healthProber struct{ healthy bool }

func (f healthProber) Check(context.Context, int, string, time.Duration) error {
	if f.healthy {
		return nil
	}
	return errors.New("connection refused")
}

func (healthProber) Smoke(context.Context, reconciler.SmokeRequest, time.Duration) error { return nil }

// TestUnhealthySites: a site nginx routes otherwise than its marker, or
// that answers 5xx while its live container is healthy, is reported and
// notified once until it recovers; 5xx from an unhealthy container is not
// this report's.
func TestUnhealthySites(t *testing.T) {
	content, err := templates.Site(templates.SiteParams{Env: "p", Service: "web", ConfDir: "/etc/nginx/conf.d", BluePort: 1, GreenPort: 2,
		Listen: &state.Listen{Host: "127.0.0.1", Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	e := &state.Env{Environment: "p", Services: map[string]state.Service{"web": {Image: "web:v1", ContainerPort: 8080, Listen: "127.0.0.1:8080"}}}
	d := &state.Desired{Env: "p", Nginx: state.Nginx{ConfDir: "/etc/nginx/conf.d"}}
	o := &state.Observed{
		Sites:      []state.Site{{Service: "web", Live: state.Green, Content: content, BluePort: 1, GreenPort: 2}},
		Containers: []state.Container{{Name: "p-web-green", Service: "web", Color: state.Green, State: "running", HostPort: 2}},
	}
	ev := &events{}
	s := &Syncer{Log: zaptest.NewLogger(t), Notifier: func([]state.Notify) Notifier { return ev }}
	routes := &fakeRoutes{routed: "green", status: 200}
	h := &Host{Routes: routes, Prober: healthProber{healthy: true}}

	for i, tc := range []struct {
		routed  string
		status  int
		healthy bool
		want    []string
		events  int // site.unhealthy notified so far
	}{
		{"green", 200, true, nil, 0},
		{"blue", 200, true, []string{"web"}, 1},
		{"blue", 502, true, []string{"web"}, 1}, // reported already
		{"green", 200, true, nil, 1},
		{"blue", 200, true, []string{"web"}, 2}, // again after recovering
		{"green", 502, true, []string{"web"}, 3},
		{"green", 502, false, nil, 3},
		{"50% blue", 200, true, nil, 3}, // a canary step is no mismatch
	} {
		routes.routed, routes.status = tc.routed, tc.status
		h.Prober = healthProber{healthy: tc.healthy}
		got := s.unhealthySites(context.Background(), h, e, d, o)
		if !slices.Equal(got, tc.want) {
			t.Errorf("case %d (%s, %d): unhealthy %q, want %q", i, tc.routed, tc.status, got, tc.want)
		}
		if n := strings.Count(ev.names(), string(state.EventSiteUnhealthy)); n != tc.events {
			t.Errorf("case %d: %d site.unhealthy events, want %d", i, n, tc.events)
		}
	}
}
