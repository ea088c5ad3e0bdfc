package state

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestReleaseAndGatesValidation: the release order and the watch's
// gates are checked with file, line, field and what would be right.
func TestReleaseAndGatesValidation(t *testing.T) {
	base := `environment: test
%s
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
    listen: "127.0.0.1:8000"
    deploy:
%s
  worker:
    image: ghcr.io/example/worker:v1
`
	for _, tc := range []struct {
		name, top, deploy, want string
	}{
		{"ok atomic", "release: atomic", "      bake: 1m\n      maxLatency: 200ms", ""},
		{"ok per-service canary", "release: per-service", "      strategy: canary", ""},
		{"unknown release", "release: all-at-once", "      bake: 1m", `envs/test.yaml:2: release: want "per-service" (the default: one service after the other) or "atomic"`},
		{"canary in atomic", "release: atomic", "      strategy: canary", `envs/test.yaml:9: services.api.deploy.strategy: canary cannot be part of release "atomic"`},
		{"negative latency", "", "      bake: 1m\n      maxLatency: -1s", "services.api.deploy.maxLatency: want a duration of 0s (no latency gate) or more"},
		{"latency without watch", "", "      maxLatency: 200ms", "services.api.deploy.maxLatency: is judged during a bake or canary step"},
		{"percentile", "", "      bake: 1m\n      latencyPercentile: 101", "services.api.deploy.latencyPercentile: want a percentile from 1 to 100 such as 95, got 101"},
		{"min requests", "", "      bake: 1m\n      minRequests: -3", "services.api.deploy.minRequests: want a number of requests, 1 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := strings.Replace(strings.Replace(base, "%s", tc.top, 1), "%s", tc.deploy, 1)
			e, err := Load(fstest.MapFS{EnvPath("test"): {Data: []byte(data)}}, "test")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if tc.top == "release: atomic" && e.Release != ReleaseAtomic {
					t.Errorf("release %q", e.Release)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReleaseDefault: an env file without release is per-service.
func TestReleaseDefault(t *testing.T) {
	e, err := Load(fstest.MapFS{EnvPath("test"): {Data: []byte("environment: test\nservices:\n  w:\n    image: ghcr.io/example/w:v1\n")}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	if e.Release != ReleasePerService {
		t.Errorf("release %q, want %q", e.Release, ReleasePerService)
	}
}
