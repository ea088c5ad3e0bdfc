package reconciler

import (
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/developer-mesh/reconciler/state"
)

// TestDiffChangedDefault: a change to the env's defaults block is planned
// as a change to each service that inherits it, and to none that
// overrides it, and as a change of the default itself, its reference
// hidden (golden testdata/plans/default-changed.golden).
func TestDiffChangedDefault(t *testing.T) {
	file := func(secret string) []byte {
		return []byte(`environment: prod
nginx: {confDir: /etc/nginx/conf.d}
defaults:
  secrets:
    DATABASE_PASSWORD: ` + secret + `
  memory: 256m
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
    listen: "127.0.0.1:8000"
  web:
    image: ghcr.io/example/web:v1
    containerPort: 8081
    listen: "127.0.0.1:8001"
    secrets: {DATABASE_PASSWORD: ssm:/app/web-db}
  worker:
    image: ghcr.io/example/worker:v1
`)
	}
	resolve := func(commit string, data []byte) *state.Desired {
		t.Helper()
		fsys := fstest.MapFS{state.EnvPath("prod"): {Data: data}}
		e, err := state.Load(fsys, "prod")
		if err != nil {
			t.Fatal(err)
		}
		values := map[state.SecretRef]string{}
		for _, ref := range e.SecretRefs() {
			values[ref] = "hunter2-" + ref.String()
		}
		d, err := state.Resolve(e, fsys, commit, values)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	before := resolve("c0ffee0000000000000000000000000000000001", file("ssm:/app/db"))
	o := applied(t, before, state.Blue)
	o.Settings = state.DisplaySettings(before.Settings, testKey) // as the apply of before recorded them
	after := resolve("c0ffee0000000000000000000000000000000002", file("ssm:/app/db-rotated"))
	p, err := Diff(after, o, testKey)
	if err != nil {
		t.Fatal(err)
	}
	got := p.String()
	golden(t, filepath.Join("testdata", "plans", "default-changed.golden"), got)
}
