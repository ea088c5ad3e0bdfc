package state

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const fleetBase = `environment: fl
services:
  web:
    image: example.com/web:v1
    containerPort: 8080
`

func loadFleet(t *testing.T, fleet string) (*Env, error) {
	t.Helper()
	fsys := fstest.MapFS{EnvPath("fl"): &fstest.MapFile{Data: []byte(fleetBase + fleet)}}
	return Load(fsys, "fl")
}

func TestFleetDefaults(t *testing.T) {
	e, err := loadFleet(t, "fleet:\n  store: rediss://cache.example.com:6379/2\n  auth: env:REDIS_PASSWORD\n  hosts: [a, b, c]\n  canary: a\n")
	if err != nil {
		t.Fatal(err)
	}
	f := e.Fleet
	if f.Parallel != 1 || f.CanaryBake.D() != DefaultCanaryBake || f.LeaseTTL.D() != DefaultLeaseTTL {
		t.Errorf("defaults: parallel %d, canaryBake %s, leaseTTL %s", f.Parallel, f.CanaryBake.D(), f.LeaseTTL.D())
	}
	if ref, ok := f.AuthRef(); !ok || ref != (SecretRef{Scheme: SchemeEnv, Name: "REDIS_PASSWORD"}) {
		t.Errorf("AuthRef = %v, %v", ref, ok)
	}
	if f.Index("b") != 1 || f.Index("z") != -1 {
		t.Errorf("Index: b %d, z %d", f.Index("b"), f.Index("z"))
	}
	e, err = loadFleet(t, "fleet:\n  store: redis://127.0.0.1:6379\n  hosts: [a]\n  leaseTTL: 5s\n")
	if err != nil {
		t.Fatal(err)
	}
	if e.Fleet.CanaryBake.D() != 0 || e.Fleet.LeaseTTL.D() != 5*time.Second || e.Fleet.AfterBake.D() != 0 {
		t.Errorf("no canary: canaryBake %s, leaseTTL %s, afterBake %s", e.Fleet.CanaryBake.D(), e.Fleet.LeaseTTL.D(), e.Fleet.AfterBake.D())
	}
	e, err = loadFleet(t, "fleet:\n  store: redis://127.0.0.1:6379\n  hosts: [a]\n  after: prod-us-east-1\n")
	if err != nil {
		t.Fatal(err)
	}
	if e.Fleet.After != "prod-us-east-1" || e.Fleet.AfterBake.D() != DefaultCanaryBake {
		t.Errorf("after: %q, afterBake %s", e.Fleet.After, e.Fleet.AfterBake.D())
	}
}

func TestFleetErrors(t *testing.T) {
	for _, tc := range []struct{ name, fleet, want string }{
		{"no store", "fleet:\n  hosts: [a]\n", "envs/fl.yaml:6: fleet.store: required; want redis://HOST:PORT"},
		{"scheme", "fleet:\n  store: http://x:1\n  hosts: [a]\n", `envs/fl.yaml:7: fleet.store: want redis://HOST:PORT or rediss://HOST:PORT (TLS), optionally with /DB, got scheme "http"`},
		{"password in URL", "fleet:\n  store: redis://:hunter2@x:1\n  hosts: [a]\n", "envs/fl.yaml:7: fleet.store: holds a password (value not shown); put the password in a secret and name it in fleet.auth"},
		{"db", "fleet:\n  store: redis://x:1/99\n  hosts: [a]\n", `got database "99", want 0 to 15`},
		{"auth", "fleet:\n  store: redis://x:1\n  auth: hunter2\n  hosts: [a]\n", "envs/fl.yaml:8: fleet.auth: not a secret reference (value not shown)"},
		{"no hosts", "fleet:\n  store: redis://x:1\n", "envs/fl.yaml:6: fleet.hosts: required"},
		{"twice", "fleet:\n  store: redis://x:1\n  hosts: [a, a]\n", `envs/fl.yaml:8: fleet.hosts[1]: host "a" is listed twice`},
		{"bad host", "fleet:\n  store: redis://x:1\n  hosts: [A_1]\n", `envs/fl.yaml:8: fleet.hosts[0]: want a host name that is a DNS label`},
		{"parallel", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  parallel: 3\n", "envs/fl.yaml:9: fleet.parallel: want how many hosts may deploy at once, 1 to 2 (the number of hosts), got 3"},
		{"canary", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  canary: b\n", `envs/fl.yaml:9: fleet.canary: want the first of fleet.hosts (the canary deploys first), got "b"`},
		{"ttl", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  leaseTTL: 1s\n", "envs/fl.yaml:9: fleet.leaseTTL: want a duration of at least 3s"},
		{"unknown", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  paralel: 2\n", "envs/fl.yaml:9: fleet.paralel:"},
		{"after itself", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: fl\n", "envs/fl.yaml:9: fleet.after: names this env"},
		{"after a bad name", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: ../x\n", "envs/fl.yaml:9: fleet.after: want the name of the env of the region before this one"},
		{"afterBake", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: us\n  afterBake: -1s\n", "envs/fl.yaml:10: fleet.afterBake: want a duration of 0 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadFleet(t, tc.fleet)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}
