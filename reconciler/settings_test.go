package reconciler

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// settingsEnv is a small env file, defaults applied, for the settings
// cases.
func settingsEnv() *state.Env {
	e := &state.Env{Environment: "prod", Services: map[string]state.Service{
		"api": {Image: "ghcr.io/developer-mesh/devops-rest-api:v1", ContainerPort: 8081, Listen: "127.0.0.1:8000"},
	}}
	e.Default()
	return e
}

// leaf is one field of the env file's types that holds a value, with the
// path the plan names it by and a way to change it.
type leaf struct {
	path   string
	change func()
}

// fill sets every field under v (an addressable value of one of the env
// file's types) to a value, giving maps one key "k" and slices one
// element, and returns the leaves. A kind it does not know fails the test:
// a new field must be shown by the preview before it can be added.
func fill(t *testing.T, path string, v reflect.Value) []leaf {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return fill(t, path, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(state.Duration{}) {
			v.Set(reflect.ValueOf(state.Duration{Duration: time.Second}))
			return []leaf{{path, func() { v.Set(reflect.ValueOf(state.Duration{Duration: 2 * time.Second})) }}}
		}
		var out []leaf
		for i := 0; i < v.NumField(); i++ {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			p := name
			if path != "" {
				p = path + "." + name
			}
			out = append(out, fill(t, p, v.Field(i))...)
		}
		return out
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		out := fill(t, path+".k", e)
		k := reflect.ValueOf("k").Convert(v.Type().Key())
		v.SetMapIndex(k, e)
		// A map's values are not addressable: each change writes the
		// element back.
		for i := range out {
			change := out[i].change
			out[i].change = func() { change(); v.SetMapIndex(k, e) }
		}
		return out
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		switch v.Type().Elem().Kind() {
		case reflect.String, reflect.Int:
			fill(t, path, v.Index(0))
			return []leaf{{path, func() { v.Set(reflect.Append(v, v.Index(0))) }}}
		}
		return fill(t, path+"[0]", v.Index(0))
	case reflect.String:
		v.SetString("a")
		return []leaf{{path, func() { v.SetString("b") }}}
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
		return []leaf{{path, func() { v.SetInt(2) }}}
	case reflect.Bool:
		return []leaf{{path, func() { v.SetBool(!v.Bool()) }}}
	}
	t.Fatalf("%s: a %s field of the env file that the preview does not show (teach state.Settings and this test)", path, v.Kind())
	return nil
}

// TestEveryEnvFieldChangesThePlan walks the env file's Go types
// (state.Env and everything under it) and changes each field in turn: the
// plan must not be empty, must name the field, and must restart nothing
// for it. A field added to the schema that the preview misses fails here.
func TestEveryEnvFieldChangesThePlan(t *testing.T) {
	var base state.Env
	n := len(fill(t, "", reflect.ValueOf(&base).Elem()))
	if n < 50 {
		t.Fatalf("walked %d fields, want every field of state.Env (more than 50)", n)
	}
	recorded := state.DisplaySettings(state.Settings(&base), testKey)
	for i := 0; i < n; i++ {
		var e state.Env
		leaves := fill(t, "", reflect.ValueOf(&e).Elem())
		lf := leaves[i]
		t.Run(lf.path, func(t *testing.T) {
			lf.change()
			d := &state.Desired{Env: "prod", Commit: "c2", Settings: state.Settings(&e)}
			p, err := Diff(d, &state.Observed{Settings: recorded}, testKey)
			if err != nil {
				t.Fatal(err)
			}
			if p.Empty() {
				t.Fatalf("changing %s gives an empty plan", lf.path)
			}
			out := p.String()
			if !strings.Contains(out, lf.path+":") {
				t.Fatalf("the plan does not name %s:\n%s", lf.path, out)
			}
			for _, c := range p.Changes {
				for _, s := range c.Steps {
					if s.Action != ActSettings {
						t.Fatalf("changing %s plans %s", lf.path, s)
					}
				}
			}
		})
	}
}

// TestSettingsHideSecrets: a notify URL shows its scheme and host only,
// env values not at all, and a change of either still shows.
func TestSettingsHideSecrets(t *testing.T) {
	e := settingsEnv()
	e.Notify = []state.Notify{{URL: "https://user:pw@hooks.example.com/T0/SECRETTOKEN?x=QUERYTOKEN", Format: "slack"}}
	s := e.Services["api"]
	s.Env = map[string]string{"LOG_LEVEL": "ENVVALUE"}
	e.Services["api"] = s
	e.Fleet = &state.Fleet{Store: "redis://cache.example.com:6379", Auth: "secretsmanager:AUTHREF", Hosts: []string{"h1"}}
	before := state.DisplaySettings(state.Settings(e), testKey)
	e.Notify[0].URL = "https://user:pw@hooks.example.com/T0/SECRETTOKEN2"
	s.Env["LOG_LEVEL"] = "ENVVALUE2"
	e.Fleet.Auth = "ssm:/AUTHREF2"
	d := &state.Desired{Env: "prod", Commit: "c2", Settings: state.Settings(e)}
	p, err := Diff(d, &state.Observed{Settings: before}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	out := p.String() + fmt.Sprint(p.Changes[0].Steps[0].Settings) + fmt.Sprint(before)
	for _, secret := range []string{"SECRETTOKEN", "QUERYTOKEN", "pw@", "user", "ENVVALUE", "AUTHREF"} {
		if strings.Contains(out, secret) {
			t.Errorf("plan or record shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`notify[0].url: "https://hooks.example.com/…" (hidden, `, "services.api.env.LOG_LEVEL: (hidden value ", "fleet.auth: (secret reference) (hidden, "} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}
