package reconciler_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// The route checks: after every traffic move apply asks nginx (here
// memhost, which answers as nginx's route location does) which routing
// its workers chose, before anything irreversible.

const routeURL = "http://127.0.0.1:8080" + templates.RoutePath

// routedPlan is replacePlan with a real site file (listening on
// 127.0.0.1:8080) and the route checks the planner gives each move.
func routedPlan(t *testing.T) *reconciler.Plan {
	t.Helper()
	content, err := templates.Site(templates.SiteParams{Env: env, Service: "web", ConfDir: confDir, BluePort: bluePort, GreenPort: newPort,
		Listen: &state.Listen{Host: "127.0.0.1", Port: 8080}, Canary: []int{10}})
	if err != nil {
		t.Fatal(err)
	}
	route := func(marker, want string) *reconciler.SiteChange {
		return &reconciler.SiteChange{ConfDir: confDir, Marker: marker,
			Route: &reconciler.SmokeRequest{URL: routeURL, WantStatus: 200, WantBody: want}}
	}
	p := replacePlan()
	c := &p.Changes[0]
	for i := range c.Steps {
		s := &c.Steps[i]
		switch s.Action {
		case reconciler.ActWriteNginx:
			s.Site.Content = content
			s.Site.Loaded = nil
		case reconciler.ActShift:
			s.Site = route(state.CanaryMarkerFile(env, "web", s.Percent, s.Color), "10% green")
		case reconciler.ActSwitch, reconciler.ActDrain:
			s.Site = route(state.MarkerFile(env, "web"), "green")
		}
	}
	for i := range c.Undo {
		if c.Undo[i].Action == reconciler.ActSwitch {
			c.Undo[i].Site = route(state.MarkerFile(env, "web"), "blue")
		}
	}
	return p
}

// TestApplyRouteChecked: each move is followed by its route check, which
// nginx answers as the move wants, before the next step.
func TestApplyRouteChecked(t *testing.T) {
	r := newRig(t)
	if _, err := r.ap.Apply(context.Background(), routedPlan(t)); err != nil {
		t.Fatal(err)
	}
	order := []string{"shift p-web 10% green", "route " + routeURL + " 10% green", "switch p-web green", "route " + routeURL + " green", "stop p-web-blue"}
	last := -1
	for _, want := range order {
		i := r.indexOf(want)
		if i <= last {
			t.Fatalf("call %q at %d, want it after %d: %q", want, i, last, r.calls())
		}
		last = i
	}
}

// TestApplyRouteNotFollowed: nginx's workers do not see the markers
// (confDir unreadable for their user). The first move is not followed:
// the deploy fails, traffic stays on blue, green is removed, blue is never
// drained, and the error names the cause and the fix.
func TestApplyRouteNotFollowed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plan   func(*reconciler.Plan)
		marker string
	}{
		{"canary step", func(*reconciler.Plan) {}, state.CanaryMarkerFile(env, "web", 10, state.Green)},
		{"switch", func(p *reconciler.Plan) {
			c := &p.Changes[0]
			var steps []reconciler.Step
			for i, s := range c.Steps {
				if s.Action == reconciler.ActShift || s.Action == reconciler.ActWatch && s.Watch.For == time.Minute {
					if i < c.UndoBefore {
						c.UndoBefore--
					}
					continue
				}
				steps = append(steps, s)
			}
			c.Steps = steps
		}, state.MarkerFile(env, "web")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.h.MarkersUnseen = true
			p := routedPlan(t)
			tc.plan(p)
			_, err := r.ap.Apply(context.Background(), p)
			r.wantRolledBack(t, err)
			if !errors.Is(err, reconciler.ErrNotRouted) {
				t.Errorf("apply = %v, want ErrNotRouted", err)
			}
			for _, want := range []string{confDir + "/" + tc.marker, "chmod 0755 " + confDir, "nginx's workers"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if i := r.indexOf("route " + routeURL + " blue"); i < 0 {
				t.Errorf("the switch back to blue was not checked through nginx: %q", r.calls())
			}
			if i := r.indexOf("point /names/p/web green"); i >= 0 {
				t.Errorf("the name moved to green although its traffic did not: %q", r.calls())
			}
		})
	}
}

// TestApplySwitchBackNotFollowed: the bake fails and nginx does not follow
// the switch back to blue: the undo stops there, green (which nginx may
// still route to) is not removed, blue is not drained, and the error says
// traffic may still be on the new version.
func TestApplySwitchBackNotFollowed(t *testing.T) {
	r := newRig(t)
	// green fails its health checks once it has all the traffic (the
	// bake), and nginx does not follow the switch back.
	sick := failAfter(func(c memhost.Call) bool { return c.Op == "switch" && c.Arg == "green" },
		func(c memhost.Call) bool { return c.Op == "check" && c.Target == "21001" })
	r.h.Fault = func(c memhost.Call) error {
		if c.Op == "route" && c.Arg == "blue" {
			return errBoom
		}
		return sick(c)
	}
	_, err := r.ap.Apply(context.Background(), routedPlan(t))
	if err == nil || errors.Is(err, reconciler.ErrRolledBack) {
		t.Fatalf("apply = %v, want a failed undo", err)
	}
	if !strings.Contains(err.Error(), "traffic may still be on the new version") {
		t.Errorf("error %q does not say where traffic may be", err)
	}
	if _, ok := r.h.Container(newName); !ok {
		t.Error("green was removed although nginx may still route to it")
	}
	if _, ok := r.h.Container(blueName); !ok {
		t.Error("blue was removed")
	}
}

// TestApplyDrainNotRouted: nginx stops seeing the marker after the switch
// was verified (during the bake, say): the drain asks again, fails, and
// blue, which nginx routes to, is not removed.
func TestApplyDrainNotRouted(t *testing.T) {
	r := newRig(t)
	r.h.Fault = func(c memhost.Call) error {
		if c.Op == "health-check" {
			// Fault runs under the host's lock, as the route check reads it.
			r.h.MarkersUnseen = true
		}
		return nil
	}
	_, err := r.ap.Apply(context.Background(), routedPlan(t))
	if !errors.Is(err, reconciler.ErrNotRouted) || !strings.Contains(err.Error(), "is not drained") {
		t.Fatalf("apply = %v, want the drain refused", err)
	}
	if c, ok := r.h.Container(blueName); !ok || !c.Running() {
		t.Error("blue was drained although nginx routes to it")
	}
}

// namedPlan is routedPlan whose name steps ask the name proxy, which
// runs, after moving its marker.
func namedPlan(t *testing.T, r *rig) *reconciler.Plan {
	t.Helper()
	p := routedPlan(t)
	c := &p.Changes[0]
	for _, steps := range [][]reconciler.Step{c.Steps, c.Undo} {
		for i := range steps {
			if s := &steps[i]; s.Action == reconciler.ActName {
				s.Smoke = &reconciler.SmokeRequest{Exec: reconciler.NameCheckCommand(8080), WantBody: string(s.Color)}
				if err := r.h.Runtime().EnsureNameProxy(context.Background(), *s.NameProxy); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return p
}

// TestApplyNameProxyChecked: after its marker moves, the name proxy is
// asked which color it forwards to; when it keeps the old one, the
// change is rolled back and blue is never drained.
func TestApplyNameProxyChecked(t *testing.T) {
	check := strings.Join(reconciler.NameCheckCommand(8080), " ")
	proxy := state.NameProxyName(env, "web")

	r := newRig(t)
	if _, err := r.ap.Apply(context.Background(), namedPlan(t, r)); err != nil {
		t.Fatal(err)
	}
	if i, j := r.indexOf("point /names/p/web green"), r.indexOf("exec "+proxy+" "+check); i < 0 || j < i || j > r.indexOf("stop p-web-blue") {
		t.Fatalf("the name proxy was not asked between the marker and the drain: %q", r.calls())
	}

	r = newRig(t)
	p := namedPlan(t, r)
	r.h.ExecResult = func(name string, cmd []string) (int, string) {
		if name == proxy {
			return 0, "blue\n" // the proxy does not follow its marker
		}
		return 0, ""
	}
	_, err := r.ap.Apply(context.Background(), p)
	r.wantRolledBack(t, err)
	if !errors.Is(err, reconciler.ErrNotRouted) || !strings.Contains(err.Error(), "name proxy "+proxy+" does not forward web to green") {
		t.Fatalf("apply = %v, want the name proxy named", err)
	}
}
