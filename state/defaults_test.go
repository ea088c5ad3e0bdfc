package state

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestDefaultsMerge pins the merge rule of the defaults block: mappings
// (env, secrets, health, deploy) merge by key with the service's winning,
// lists (smoke, deploy.steps) and single values (envFile, drain, memory)
// of the service replace the default whole, and a service that says
// nothing inherits everything.
func TestDefaultsMerge(t *testing.T) {
	const file = `environment: test
x-anchors:
  deploy: &dep
    maxErrorRate: 2%
defaults:
  envFile: envs/test.env
  env: {LOG_LEVEL: info, REGION: us}
  secrets:
    DB: ssm:/app/db
    KEY: ssm:/app/key
  health: {path: /ready, startTimeout: 90s}
  drain: 0s
  deploy: {bake: 1m, strategy: canary, steps: [10, 100]}
  memory: 256m
  smoke: [{path: /ready}]
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
    listen: "127.0.0.1:18080"
    env: {LOG_LEVEL: debug, PORT: "8080"}
    secrets: {KEY: ssm:/app/api-key}
    health: {interval: 5s}
    deploy: {steps: [50, 100]}
    smoke: [{path: /health, status: 204}]
    memory: 512m
    drain: 10s
  web:
    image: ghcr.io/example/web:v1
    containerPort: 8081
    listen: "127.0.0.1:18081"
    deploy:
      <<: *dep
  worker:
    image: ghcr.io/example/worker:v1
    envFile: envs/worker.env
    secrets: {}
`
	fsys := fstest.MapFS{
		EnvPath("test"):   {Data: []byte(file)},
		"envs/test.env":   {Data: []byte("A=1\n")},
		"envs/worker.env": {Data: []byte("B=2\n")},
	}
	e, err := Load(fsys, "test")
	if err != nil {
		t.Fatal(err)
	}
	api, web, worker := e.Services["api"], e.Services["web"], e.Services["worker"]

	if want := map[string]string{"LOG_LEVEL": "debug", "REGION": "us", "PORT": "8080"}; !reflect.DeepEqual(api.Env, want) {
		t.Errorf("api env = %v, want %v (merged by key, the service's winning)", api.Env, want)
	}
	if want := map[string]string{"DB": "ssm:/app/db", "KEY": "ssm:/app/api-key"}; !reflect.DeepEqual(api.Secrets, want) {
		t.Errorf("api secrets = %v, want %v", api.Secrets, want)
	}
	if api.Health.Path != "/ready" || api.Health.Interval.D() != 5*time.Second || api.Health.StartTimeout.D() != 90*time.Second {
		t.Errorf("api health = %+v, want path /ready, interval 5s, startTimeout 90s", api.Health)
	}
	if !reflect.DeepEqual(api.Deploy.Steps, []int{50, 100}) || api.Deploy.Bake.D() != time.Minute || api.Deploy.Strategy != Canary {
		t.Errorf("api deploy = %+v, want steps [50 100] (replaced), bake 1m and canary (inherited)", api.Deploy)
	}
	if len(api.Smoke) != 1 || api.Smoke[0].Path != "/health" || api.Smoke[0].Status != 204 {
		t.Errorf("api smoke = %+v, want only the service's own check (lists replace)", api.Smoke)
	}
	if api.Memory != "512m" || api.Drain.D() != 10*time.Second || api.EnvFile != "envs/test.env" {
		t.Errorf("api memory %q drain %s envFile %q, want 512m, 10s, envs/test.env", api.Memory, api.Drain.D(), api.EnvFile)
	}

	if web.Deploy.MaxErrorRate != "2%" || web.Deploy.Bake.D() != time.Minute || !reflect.DeepEqual(web.Deploy.Steps, []int{10, 100}) {
		t.Errorf("web deploy = %+v, want maxErrorRate 2%% (its << merge) with bake 1m and steps [10 100] inherited", web.Deploy)
	}
	if len(web.Smoke) != 1 || web.Smoke[0].Path != "/ready" || web.Memory != "256m" || web.Drain.D() != 0 {
		t.Errorf("web smoke %+v memory %q drain %s, want the defaults' /ready, 256m and 0s", web.Smoke, web.Memory, web.Drain.D())
	}

	if worker.Health.Path != DefaultHealthPath || worker.Deploy.Bake.D() != 0 || len(worker.Smoke) != 0 {
		t.Errorf("worker health path %q bake %s smoke %v: a worker inherits no HTTP-only default", worker.Health.Path, worker.Deploy.Bake.D(), worker.Smoke)
	}
	if worker.Health.StartTimeout.D() != 90*time.Second {
		t.Errorf("worker startTimeout = %s, want the default's 90s", worker.Health.StartTimeout.D())
	}
	if worker.EnvFile != "envs/worker.env" {
		t.Errorf("worker envFile = %q, want its own", worker.EnvFile)
	}
	if want := map[string]string{"DB": "ssm:/app/db", "KEY": "ssm:/app/key"}; !reflect.DeepEqual(worker.Secrets, want) {
		t.Errorf("worker secrets = %v, want the defaults' (an empty mapping merges, adding nothing)", worker.Secrets)
	}
}

// TestDefaultsErrorLines: an inherited value that is wrong is reported at
// the line of the defaults block, once per service that inherits it, and
// a service's own value at its own line.
func TestDefaultsErrorLines(t *testing.T) {
	const file = `environment: test
defaults:
  memory: 2 gigs
services:
  api:
    image: ghcr.io/example/api:v1
  worker:
    image: ghcr.io/example/worker:v1
    memory: 1x
`
	_, err := Load(fstest.MapFS{EnvPath("test"): {Data: []byte(file)}}, "test")
	if err == nil {
		t.Fatal("loaded a bad default")
	}
	want := `envs/test.yaml:3: services.api.memory: unknown unit "gigs" in "2 gigs"; want b, k, m or g
envs/test.yaml:9: services.worker.memory: unknown unit "x" in "1x"; want b, k, m or g`
	if err.Error() != want {
		t.Errorf("got:\n%s\nwant:\n%s", err, want)
	}
}

// TestDefaultsBudget: merging the defaults into every service counts
// against the walk's node budget, so a large defaults block (merge keys
// included) times many services is an error, quickly, not a long walk.
func TestDefaultsBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("environment: test\nx-vars: &vars\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "  V%d: x\n", i)
	}
	b.WriteString("defaults:\n  env:\n    <<: [")
	for i := 0; i < 50; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*vars")
	}
	b.WriteString("]\nservices:\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&b, "  s%d:\n    image: ghcr.io/example/s:v1\n", i)
	}
	start := time.Now()
	_, err := Load(fstest.MapFS{EnvPath("test"): {Data: []byte(b.String())}}, "test")
	if err == nil || !strings.Contains(err.Error(), "too many YAML nodes") {
		t.Fatalf("err = %.300v, want too many YAML nodes", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}
