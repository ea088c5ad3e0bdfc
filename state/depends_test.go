package state

import (
	"reflect"
	"strings"
	"testing"
)

// TestDependsOnForms: the short (list) and long (mapping) forms of
// dependsOn load to the same model, the condition defaults to healthy and
// Compose's spellings are recorded as ours; Resolve sorts the entries and
// the settings show each one.
func TestDependsOnForms(t *testing.T) {
	const file = `environment: dep
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
    dependsOn: [web, cache]
  web:
    image: ghcr.io/example/web:v1
    containerPort: 8080
    dependsOn:
      cache: {condition: service_started}
  cache:
    image: ghcr.io/example/cache:v1
  worker:
    image: ghcr.io/example/worker:v1
    dependsOn:
      api: {}
      web: {condition: service_healthy}
`
	e, err := Load(repoFS(t, "dep", []byte(file)), "dep")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]Dependency{
		"api":    {"web": {ConditionHealthy}, "cache": {ConditionHealthy}},
		"web":    {"cache": {ConditionStarted}},
		"cache":  nil,
		"worker": {"api": {ConditionHealthy}, "web": {ConditionHealthy}},
	}
	for name, deps := range want {
		if got := e.Services[name].DependsOn; len(got)+len(deps) > 0 && !reflect.DeepEqual(map[string]Dependency(got), deps) {
			t.Errorf("services.%s.dependsOn = %v, want %v", name, got, deps)
		}
	}
	d, err := Resolve(e, repoFS(t, "dep", []byte(file)), "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]ServiceDependency{}
	for _, s := range d.Services {
		got[s.Name] = s.DependsOn
	}
	if w := []ServiceDependency{{"cache", ConditionHealthy}, {"web", ConditionHealthy}}; !reflect.DeepEqual(got["api"], w) {
		t.Errorf("resolved api.DependsOn = %v, want %v", got["api"], w)
	}
	if got["cache"] != nil {
		t.Errorf("resolved cache.DependsOn = %v, want nil", got["cache"])
	}
	var shown []string
	for _, s := range Settings(e) {
		if strings.Contains(s.Path, ".dependsOn.") {
			shown = append(shown, s.Path+"="+s.Display(nil))
		}
	}
	wantShown := []string{
		`services.api.dependsOn.cache.condition="healthy"`,
		`services.api.dependsOn.web.condition="healthy"`,
		`services.web.dependsOn.cache.condition="started"`,
		`services.worker.dependsOn.api.condition="healthy"`,
		`services.worker.dependsOn.web.condition="healthy"`,
	}
	if !reflect.DeepEqual(shown, wantShown) {
		t.Errorf("settings:\n%s\nwant:\n%s", strings.Join(shown, "\n"), strings.Join(wantShown, "\n"))
	}
}

// TestDependencyCycles: each cycle is found once, from its smallest name,
// whatever service the walk starts at.
func TestDependencyCycles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edges map[string][]string
		want  [][]string
	}{
		{"none", map[string][]string{"a": {"b"}, "b": {"c"}}, nil},
		{"two", map[string][]string{"a": {"b"}, "b": {"a"}}, [][]string{{"a", "b", "a"}}},
		{"three from the middle", map[string][]string{"c": {"a"}, "a": {"b"}, "b": {"c"}}, [][]string{{"a", "b", "c", "a"}}},
		{"two cycles", map[string][]string{"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}}, [][]string{{"a", "b", "a"}, {"c", "d", "c"}}},
		{"diamond", map[string][]string{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			names := SortedKeys(map[string]bool{"a": true, "b": true, "c": true, "d": true})
			if got := dependencyCycles(names, tc.edges); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("cycles = %v, want %v", got, tc.want)
			}
		})
	}
}
