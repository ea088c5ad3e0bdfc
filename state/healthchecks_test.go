package state_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/developer-mesh/reconciler/state"
)

// TestSiteHealthChecks: one check per public site (listen not loopback, a
// serverName), HTTPS with tls, the health path and listen port, defaults
// filled; services with their own route53 id, loopback listens and
// upstream-only services get none; bad settings are reported.
func TestSiteHealthChecks(t *testing.T) {
	t.Parallel()
	const env = `environment: test
route53:
  healthChecks:
    failureThreshold: 5
services:
  web:
    image: ghcr.io/example/web:v1
    containerPort: 8080
    listen: "443 ssl"
    serverName: www.example.com example.com
    tls: {certificate: /etc/ssl/w.pem, key: /etc/ssl/w.key}
    health: {path: /ready}
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8081
    listen: "80"
    serverName: api.example.com
  local:
    image: ghcr.io/example/api:v1
    containerPort: 8082
    listen: "127.0.0.1:8082"
    serverName: local.example.com
  own:
    image: ghcr.io/example/api:v1
    containerPort: 8083
    listen: "8083"
    serverName: own.example.com
    route53: {healthCheckId: abcdef12-3456-7890-abcd-ef1234567890}
  upstream:
    image: ghcr.io/example/api:v1
    containerPort: 8084
`
	e, err := state.Load(fstest.MapFS{"envs/test.yaml": {Data: []byte(env)}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.SiteHealthCheck{
		{Service: "api", FQDN: "api.example.com", Type: "HTTP", Port: 80, Path: "/health", RequestInterval: 30, FailureThreshold: 5},
		{Service: "web", FQDN: "www.example.com", Type: "HTTPS", Port: 443, Path: "/ready", RequestInterval: 30, FailureThreshold: 5},
	}
	if got := e.SiteHealthChecks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("checks\n got %+v\nwant %+v", got, want)
	}

	bad := strings.Replace(env, "failureThreshold: 5", "failureThreshold: 11\n    requestInterval: 20", 1)
	_, err = state.Load(fstest.MapFS{"envs/test.yaml": {Data: []byte(bad)}}, "test")
	if err == nil || !strings.Contains(err.Error(), "route53.healthChecks.requestInterval: want 10 or 30") || !strings.Contains(err.Error(), "route53.healthChecks.failureThreshold: want 1 to 10, got 11") {
		t.Fatalf("bad settings: %v", err)
	}

	// The shipped prod env asks for them: its two public sites over HTTPS.
	prod, err := state.Load(os.DirFS(".."), "prod")
	if err != nil {
		t.Fatal(err)
	}
	got := prod.SiteHealthChecks()
	if len(got) != 2 || got[0].FQDN != "mcp.dev-mesh.io" || got[1].FQDN != "api.dev-mesh.io" || got[0].Type != "HTTPS" || got[0].Port != 443 || got[0].Path != "/health" {
		t.Fatalf("prod's checks %+v", got)
	}
}
