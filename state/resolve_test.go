package state

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func loadValid(t *testing.T) (*Env, map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := repoFS(t, "test", data)
	e, err := Load(fsys, "test")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	files := map[string][]byte{}
	for p, f := range fsys {
		files[p] = f.Data
	}
	return e, files
}

// values keys secret values by their parsed references, as Resolve wants
// them.
func values(t *testing.T, byRef map[string]string) map[SecretRef]string {
	t.Helper()
	out := make(map[SecretRef]string, len(byRef))
	for s, v := range byRef {
		ref, err := ParseSecretRef(s)
		if err != nil {
			t.Fatal(err)
		}
		out[ref] = v
	}
	return out
}

func TestResolve(t *testing.T) {
	e, files := loadValid(t)
	data, _ := os.ReadFile("testdata/valid.yaml")
	fsys := repoFS(t, "test", data)
	secrets := values(t, map[string]string{
		"ssm:/test/db_password":          "s3cret-db",
		"secretsmanager:test/tokens#api": "s3cret-token",
		"ssm:/unused":                    "ignored",
	})
	d, err := Resolve(e, fsys, "abc123", secrets)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if d.Env != "test" || d.Commit != "abc123" || d.Nginx != e.Nginx {
		t.Errorf("header = %q %q %+v", d.Env, d.Commit, d.Nginx)
	}
	if len(d.Services) != 2 || d.Services[0].Name != "api" || d.Services[1].Name != "worker" {
		t.Fatalf("services not sorted by name: %+v", d.Services)
	}
	api := d.Services[0]
	want := Spec{
		Image:   "ghcr.io/example/api:v1.2.3",
		Command: []string{"/app/api", "serve"},
		Env: map[string]string{
			// from envs/test.env, LOG_LEVEL overridden by env
			"ENVIRONMENT": "test", "LOG_LEVEL": "info", "GREETING": `hello "world"`, "RAW": "single $quoted", "EMPTY": "",
			"VERSION": "1.10", "FEATURE": "yes",
		},
		Secrets: map[string]string{"DB_PASSWORD": "s3cret-db", "TOKEN": "s3cret-token"},
		Files: []FileContent{
			{Target: "/app/config.yaml", Content: files["templates/app.yaml"]},
			{Target: "/etc/z.yaml", Content: files["templates/worker.yaml"]},
		},
		Memory:        512 << 20,
		ContainerPort: 8080,
	}
	if !reflect.DeepEqual(api.Spec, want) {
		t.Errorf("api spec:\n got %+v\nwant %+v", api.Spec, want)
	}
	if !api.HasPort() || d.Services[1].HasPort() {
		t.Errorf("HasPort: api %v, worker %v", api.HasPort(), d.Services[1].HasPort())
	}
	wantAPI := DesiredService{
		Name: "api", Spec: api.Spec,
		Listen: &Listen{Port: 443, Params: []string{"ssl"}}, ServerName: "api.example.com",
		TLS: &TLS{Certificate: "/etc/ssl/api.pem", Key: "/etc/ssl/api.key"},
		Health: HealthParams{Path: DefaultHealthPath, Interval: 5 * time.Second, Timeout: DefaultTimeout,
			HealthyThreshold: 3, UnhealthyThreshold: DefaultUnhealthyThreshold, StartTimeout: DefaultStartTimeout},
		Drain:     10 * time.Second,
		DrainIdle: DefaultDrainIdle,
		Deploy:    DeployParams{Strategy: BlueGreen, MaxErrorRate: 0.1, StepPause: DefaultStepPause, LatencyPercentile: DefaultLatencyPercentile, MinRequests: DefaultMinRequests},
	}
	if !reflect.DeepEqual(api, wantAPI) {
		t.Errorf("api:\n got %+v\nwant %+v", api, wantAPI)
	}
	worker := d.Services[1].Spec
	if worker.Env != nil || worker.Memory != 0 || worker.Secrets["DB_PASSWORD"] != "s3cret-db" || worker.ContainerPort != 0 {
		t.Errorf("worker spec = %+v", worker)
	}
	if d.Migrations == nil || !reflect.DeepEqual(d.Migrations.Spec, Spec{Image: "ghcr.io/example/api:v1.2.3", Command: []string{"/app/migrate", "up"}}) {
		t.Errorf("migrations = %+v", d.Migrations)
	}

	// The Desired shares nothing mutable with the Env.
	api.Spec.Env["LOG_LEVEL"] = "changed"
	api.Spec.Command[0] = "changed"
	api.TLS.Key = "changed"
	if e.Services["api"].Env["LOG_LEVEL"] != "info" || e.Services["api"].Command[0] != "/app/api" || e.Services["api"].TLS.Key != "/etc/ssl/api.key" {
		t.Errorf("changing the Desired changed the Env")
	}

	// Resolving twice gives the same spec hash.
	d2, err := Resolve(e, fsys, "abc123", secrets)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if a, b := d2.Services[1].Spec.Summarize(key).Hash(), d.Services[1].Spec.Summarize(key).Hash(); a != b {
		t.Errorf("hash differs between two resolutions: %s %s", a, b)
	}
}

// TestResolveDeploySettings: a canary's settings, smoke checks and
// health check are resolved (rates as fractions, durations, defaults), and
// copied.
func TestResolveDeploySettings(t *testing.T) {
	data := []byte(`environment: test
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
    listen: "127.0.0.1:8443 ssl http2"
    tls: {certificate: /etc/ssl/api.pem, key: /etc/ssl/api.key}
    deploy: {strategy: canary, stepPause: 2m, bake: 3m, maxErrorRate: 2.5%}
    smoke:
      - {path: /health}
      - {exec: [/app/api, selftest]}
    route53: {healthCheckId: abcdef12-3456-7890-abcd-ef1234567890}
  upstream:
    image: ghcr.io/example/api:v1
    containerPort: 8081
`)
	fsys := repoFS(t, "test", data)
	e, err := Load(fsys, "test")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	d, err := Resolve(e, fsys, "abc", nil)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	api, up := d.Services[0], d.Services[1]
	if want := (Listen{Host: "127.0.0.1", Port: 8443, Params: []string{"ssl", "http2"}}); api.Listen == nil || !reflect.DeepEqual(*api.Listen, want) {
		t.Errorf("listen = %+v, want %+v", api.Listen, want)
	}
	wantDeploy := DeployParams{Strategy: Canary, Bake: 3 * time.Minute, MaxErrorRate: 0.025, Steps: DefaultSteps, StepPause: 2 * time.Minute, LatencyPercentile: DefaultLatencyPercentile, MinRequests: DefaultMinRequests}
	if !reflect.DeepEqual(api.Deploy, wantDeploy) || !api.Deploy.Watched() {
		t.Errorf("deploy = %+v, want %+v", api.Deploy, wantDeploy)
	}
	if want := []Smoke{{Path: "/health", Status: 200}, {Exec: []string{"/app/api", "selftest"}}}; !reflect.DeepEqual(api.Smoke, want) {
		t.Errorf("smoke = %+v, want %+v", api.Smoke, want)
	}
	if api.Route53 == nil || api.Route53.HealthCheckID != "abcdef12-3456-7890-abcd-ef1234567890" {
		t.Errorf("route53 = %+v", api.Route53)
	}
	if up.Listen != nil || !up.HasPort() || up.Deploy.Watched() || up.Deploy.MaxErrorRate != 0.1 {
		t.Errorf("upstream-only service = %+v", up)
	}
	api.Deploy.Steps[0], api.Smoke[1].Exec[0], api.Route53.HealthCheckID = 1, "changed", "changed"
	if s := e.Services["api"]; s.Deploy.Steps[0] != 10 || DefaultSteps[0] != 10 || s.Smoke[1].Exec[0] != "/app/api" || s.Route53.HealthCheckID == "changed" {
		t.Errorf("changing the Desired changed the Env")
	}
}

func TestResolveMissingSecret(t *testing.T) {
	e, _ := loadValid(t)
	data, _ := os.ReadFile("testdata/valid.yaml")
	_, err := Resolve(e, repoFS(t, "test", data), "abc", values(t, map[string]string{
		"secretsmanager:test/tokens#api": "hunter2",
	}))
	want := "envs/test.yaml: services.api.secrets.DB_PASSWORD: no value was resolved for secret DB_PASSWORD of service api\n" +
		"envs/test.yaml: services.worker.secrets.DB_PASSWORD: no value was resolved for secret DB_PASSWORD of service worker"
	// The whole message is compared, so it also shows that the resolved
	// value (hunter2) stays out of it.
	if err == nil || err.Error() != want {
		t.Fatalf("Resolve error:\n%v\nwant:\n%s", err, want)
	}
}

func TestResolveMissingFiles(t *testing.T) {
	e, _ := loadValid(t)
	data, _ := os.ReadFile("testdata/valid.yaml")
	fsys := repoFS(t, "test", data)
	delete(fsys, "templates/app.yaml")
	fsys["envs/test.env"].Data = []byte("BROKEN\n")
	_, err := Resolve(e, fsys, "abc", values(t, map[string]string{"ssm:/test/db_password": "x", "secretsmanager:test/tokens#api": "y"}))
	want := "envs/test.yaml: services.api.files[1].source: \"templates/app.yaml\": not found at this commit\n" +
		"envs/test.env:1: want KEY=VALUE, found no '='"
	if err == nil || err.Error() != want {
		t.Fatalf("Resolve error:\n%v\nwant:\n%s", err, want)
	}
}

// TestResolveMigrations: the migrations job gets env, envFile, secrets and
// files with the meaning they have for a service, and its secrets are in
// SecretRefs.
func TestResolveMigrations(t *testing.T) {
	data := []byte(`environment: test
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
migrations:
  image: ghcr.io/example/api:v1
  command: ["/app/migrate", "up"]
  envFile: envs/test.env
  env: {LOG_LEVEL: debug}
  secrets: {DATABASE_PASSWORD: ssm:/test/migrate_password}
  files:
    - source: templates/app.yaml
      target: /app/config.yaml
`)
	fsys := repoFS(t, "test", data)
	e, err := Load(fsys, "test")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := e.SecretRefs(), []SecretRef{{Scheme: SchemeSSM, Name: "/test/migrate_password"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("SecretRefs = %q, want %q", got, want)
	}
	d, err := Resolve(e, fsys, "abc", values(t, map[string]string{"ssm:/test/migrate_password": "m1gr4te"}))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	m := d.Migrations.Spec
	if m.Env["LOG_LEVEL"] != "debug" || m.Env["ENVIRONMENT"] != "test" || m.Secrets["DATABASE_PASSWORD"] != "m1gr4te" ||
		len(m.Files) != 1 || m.Files[0].Target != "/app/config.yaml" || len(m.Files[0].Content) == 0 {
		t.Errorf("migrations spec = %+v", m)
	}
	// A rotated secret changes the migrations spec hash, so the job runs again.
	d2, err := Resolve(e, fsys, "abc", values(t, map[string]string{"ssm:/test/migrate_password": "rotated"}))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if d.Migrations.Spec.Summarize(key).Hash() == d2.Migrations.Spec.Summarize(key).Hash() {
		t.Errorf("rotating a migrations secret kept the spec hash")
	}
	_, err = Resolve(e, fsys, "abc", map[SecretRef]string{})
	if want := "envs/test.yaml: migrations.secrets.DATABASE_PASSWORD: no value was resolved for secret DATABASE_PASSWORD of the migrations job"; err == nil || err.Error() != want {
		t.Errorf("Resolve without the value: %v\nwant %s", err, want)
	}
}

// TestResolveRefusesBadSecretValues: a secret value with a NUL byte or
// invalid UTF-8 is refused before any engine sees it (the engine would
// quote it back); the error names the secret, never the value.
func TestResolveRefusesBadSecretValues(t *testing.T) {
	e, _ := loadValid(t)
	data, _ := os.ReadFile("testdata/valid.yaml")
	for _, bad := range []string{"VALUE\x00tail", "VALUE\xfftail"} {
		_, err := Resolve(e, repoFS(t, "test", data), "abc", values(t, map[string]string{
			"secretsmanager:test/tokens#api": "hunter2",
			"ssm:/test/db_password":          bad,
		}))
		if err == nil {
			t.Fatalf("%q: no error", bad)
		}
		msg := err.Error()
		if strings.Contains(msg, "VALUE") || strings.Contains(msg, "tail") {
			t.Errorf("error shows the value: %s", msg)
		}
		if !strings.Contains(msg, "services.api.secrets.DB_PASSWORD: the value of secret DB_PASSWORD of service api (ssm:/test/db_password)") {
			t.Errorf("error does not name the secret: %s", msg)
		}
	}
}

// TestScrubber: every secret value of a Desired goes, the longest first,
// wherever it is in the text.
func TestScrubber(t *testing.T) {
	d := &Desired{Services: []DesiredService{{Spec: Spec{Secrets: map[string]string{"A": "hunter2", "B": "hunter2-long"}}}},
		Notify: []Notify{{URL: "https://hooks.example.com/T/TOKEN"}}}
	sc := d.Scrubber()
	got := sc.Scrub("env B=hunter2-long A=hunter2; post https://hooks.example.com/T/TOKEN: refused")
	if got != "env B=[secret] A=[secret]; post [secret]: refused" {
		t.Fatalf("scrubbed: %q", got)
	}
	base := errors.New("start: invalid env hunter2")
	err := sc.Error(base)
	if err.Error() != "start: invalid env [secret]" || !errors.Is(err, base) {
		t.Fatalf("scrubbed error %q, is base %v", err, errors.Is(err, base))
	}
}

// TestResolveCapsTotalBytes: one file under the size limit named forty
// times (as YAML anchors make cheap) is refused once the env's files pass
// MaxResolveBytes, before the rest is read.
func TestResolveCapsTotalBytes(t *testing.T) {
	y := "environment: t\nservices:\n  api:\n    image: ghcr.io/acme/api:v1\n    files:\n"
	for i := 0; i < 40; i++ {
		y += fmt.Sprintf("      - source: big.bin\n        target: /f/%d\n", i)
	}
	fsys := fstest.MapFS{"envs/t.yaml": {Data: []byte(y)}, "big.bin": {Data: make([]byte, 1000_000)}}
	e, err := Load(fsys, "t")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(e, fsys, "abc", nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes", 32<<20)) {
		t.Fatalf("Resolve: %v; want the total cap", err)
	}
}
