package reconciler

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

// dependsCases are the planner's golden cases of dependsOn, each compared
// with testdata/plans/<name>.golden. In desired(), mcp-server, rest-api
// and worker sort in that order; the cases make the first depend on the
// later ones.
func dependsCases() []diffCase {
	chain := func(d *state.Desired) {
		// mcp-server → rest-api (healthy) → worker (started).
		d.Services[0].DependsOn = []state.ServiceDependency{{Service: "rest-api", Condition: state.ConditionHealthy}}
		d.Services[1].DependsOn = []state.ServiceDependency{{Service: "worker", Condition: state.ConditionStarted}}
	}
	return []diffCase{
		// A first deploy starts worker, then rest-api, then mcp-server:
		// each service's name proxy answers before its dependent starts.
		{name: "depends-first-deploy", network: true, fresh: true, mutate: func(d *state.Desired, o *state.Observed) { chain(d) }},
		// A release of mcp-server and rest-api replaces rest-api first.
		{name: "depends-release", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			chain(d)
			d.Services[0].Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
			d.Services[1].Spec.Image = "ghcr.io/developer-mesh/devops-rest-api:v2"
			o.ImageIDs["ghcr.io/developer-mesh/devops-mcp:v2"] = "sha256:new-mcp"
			o.ImageIDs["ghcr.io/developer-mesh/devops-rest-api:v2"] = "sha256:new-rest"
		}},
		// Services that go are removed dependents first, as the host's
		// recorded settings say: worker (it depended on rest-api), then
		// rest-api, then mcp-server, the reverse of their names.
		{name: "depends-removed", mutate: func(d *state.Desired, o *state.Observed) {
			d.Services = d.Services[:0]
			d.Services = append(d.Services, state.DesiredService{Name: "other", Spec: state.Spec{Image: "ghcr.io/developer-mesh/other:v1"},
				Health: state.HealthParams{Interval: state.DefaultInterval, HealthyThreshold: 1, StartTimeout: state.DefaultStartTimeout}})
			o.ImageIDs["ghcr.io/developer-mesh/other:v1"] = "sha256:other"
			o.Settings = map[string]string{
				"services.worker.dependsOn.rest-api.condition":     `"healthy"`,
				"services.rest-api.dependsOn.mcp-server.condition": `"started"`,
				"services.worker.image":                            `"ghcr.io/developer-mesh/devops-worker:v1"`,
			}
		}},
	}
}

// dependsInputs are the case's desired state and observed host; unlike
// diffCase.inputs, mutate also runs on a fresh host.
func dependsInputs(t *testing.T, tc diffCase) (*state.Desired, *state.Observed) {
	t.Helper()
	d := desired("c0ffee0000000000000000000000000000000001")
	if tc.network {
		d.Network, d.NamesDir = "prod", "/var/lib/reconciler/names/prod"
	}
	o := &state.Observed{}
	if !tc.fresh {
		o = applied(t, d, state.Blue)
		d.Commit = "c0ffee0000000000000000000000000000000002"
	}
	tc.mutate(d, o)
	return d, o
}

// DependsCases returns the dependsOn golden cases with their inputs, for
// the external tests (as GoldenCases does).
func DependsCases(t *testing.T) []GoldenCase {
	t.Helper()
	var out []GoldenCase
	for _, tc := range dependsCases() {
		d, o := dependsInputs(t, tc)
		out = append(out, GoldenCase{Name: tc.name, Desired: d, Observed: o})
	}
	return out
}

func TestDiffDependsOn(t *testing.T) {
	for _, tc := range dependsCases() {
		t.Run(tc.name, func(t *testing.T) {
			d, o := dependsInputs(t, tc)
			p, err := Diff(d, o, testKey)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "plans", tc.name+".golden"), p.String())
		})
	}
}

// TestServiceOrder: dependencies come first, ties by name; an unknown
// dependency or a cycle is an error that names it.
func TestServiceOrder(t *testing.T) {
	svc := func(name string, deps ...string) state.DesiredService {
		s := state.DesiredService{Name: name}
		for _, d := range deps {
			s.DependsOn = append(s.DependsOn, state.ServiceDependency{Service: d, Condition: state.ConditionHealthy})
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		services []state.DesiredService
		want     []string
		err      string
	}{
		{"none: by name", []state.DesiredService{svc("a"), svc("b"), svc("c")}, []string{"a", "b", "c"}, ""},
		{"chain", []state.DesiredService{svc("a", "b"), svc("b", "c"), svc("c")}, []string{"c", "b", "a"}, ""},
		{"diamond", []state.DesiredService{svc("api", "db", "cache"), svc("cache", "db"), svc("db"), svc("web", "api")}, []string{"db", "cache", "api", "web"}, ""},
		{"free ones keep name order", []state.DesiredService{svc("a"), svc("b", "z"), svc("c"), svc("z")}, []string{"a", "c", "z", "b"}, ""},
		{"unknown", []state.DesiredService{svc("a", "ghost")}, nil, "service a depends on ghost"},
		{"cycle", []state.DesiredService{svc("a", "b"), svc("b", "c"), svc("c", "b"), svc("d")}, nil, "services a, b, c depend on each other in a cycle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := serviceOrder(tc.services)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name)
			}
			if !reflect.DeepEqual(names, tc.want) {
				t.Fatalf("order = %v, want %v", names, tc.want)
			}
		})
	}
}

// TestNewNameProxyIsAsked: a step that (re)starts a name proxy carries the
// check that it answers with the color, so apply does not move on (to a
// service that calls this one by name) before the proxy listens.
func TestNewNameProxyIsAsked(t *testing.T) {
	d := desired("c1")
	d.Network, d.NamesDir = "prod", "/var/lib/reconciler/names/prod"
	p, err := Diff(d, &state.Observed{}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			if s.Action != ActNameProxy {
				continue
			}
			n++
			want := &SmokeRequest{Exec: NameCheckCommand(s.NameProxy.Port), WantBody: "blue"}
			if !reflect.DeepEqual(s.Smoke, want) {
				t.Errorf("%s: smoke = %+v, want %+v", s, s.Smoke, want)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d name-proxy steps, want 2 (mcp-server, rest-api):\n%s", n, p)
	}
}
