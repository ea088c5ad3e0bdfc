package state

import (
	"net"
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
	return Load(fleetFS(fleetBase+fleet), "fl")
}

// fleetFS holds envs/fl.yaml and, for fleet.after, the envs of other
// regions: us and prod-us-east-1 (fleets), chain (after us), single (no
// fleet), broken (not YAML), and loops: loop (after fl), loop2 → loop3 →
// fl, loop4 ⇄ loop5.
func fleetFS(fl string) fstest.MapFS {
	other := func(name, fleet string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(strings.ReplaceAll(fleetBase, "fl", name) + fleet)}
	}
	return fstest.MapFS{
		EnvPath("fl"):             &fstest.MapFile{Data: []byte(fl)},
		EnvPath("us"):             other("us", "fleet:\n  store: redis://x:1\n  hosts: [u]\n"),
		EnvPath("prod-us-east-1"): other("prod-us-east-1", "fleet:\n  store: redis://x:1\n  hosts: [u]\n"),
		EnvPath("single"):         other("single", ""),
		EnvPath("loop"):           other("loop", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: fl\n"),
		EnvPath("broken"):         &fstest.MapFile{Data: []byte("environment: [\n")},
		EnvPath("loop2"):          other("loop2", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: loop3\n"),
		EnvPath("loop3"):          other("loop3", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: fl\n"),
		EnvPath("loop4"):          other("loop4", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: loop5\n"),
		EnvPath("loop5"):          other("loop5", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: loop4\n"),
		EnvPath("escape"):         other("escape", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: ../../fl\n"),
		EnvPath("chain"):          other("chain", "fleet:\n  store: redis://x:1\n  hosts: [u]\n  after: us\n"),
	}
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
	if e.Fleet.After != "prod-us-east-1" || e.Fleet.AfterBake.D() != DefaultAfterBake {
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
		{"afterBake", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: us\n  afterBake: -1s\n", "envs/fl.yaml:10: fleet.afterBake: want a duration of 0s (no bake) or more"},
		{"user in URL", "fleet:\n  store: redis://hunter2@x:1\n  hosts: [a]\n", "envs/fl.yaml:7: fleet.store: holds a user name (value not shown); put the ACL user in fleet.username"},
		{"empty port", "fleet:\n  store: \"redis://x:\"\n  hosts: [a]\n", `envs/fl.yaml:7: fleet.store: want redis://HOST:PORT or rediss://HOST:PORT (TLS), optionally with /DB; got port "", want 1 to 65535`},
		{"port 0", "fleet:\n  store: rediss://x:0\n  hosts: [a]\n", `got port "0", want 1 to 65535`},
		{"port too big", "fleet:\n  store: redis://x:99999\n  hosts: [a]\n", `envs/fl.yaml:7: fleet.store: want redis://HOST:PORT or rediss://HOST:PORT (TLS), optionally with /DB; got port "99999", want 1 to 65535`},
		{"metadata address", "fleet:\n  store: redis://169.254.169.254:80\n  hosts: [a]\n", "envs/fl.yaml:7: fleet.store: want redis://HOST:PORT or rediss://HOST:PORT (TLS), optionally with /DB; got 169.254.169.254, a link-local address (where the cloud's metadata service answers)"},
		{"metadata address v6", "fleet:\n  store: redis://[fd00:ec2::254]:6379\n  hosts: [a]\n", "got fd00:ec2::254, a link-local address"},
		{"link-local v6", "fleet:\n  store: redis://[fe80::1]:6379\n  hosts: [a]\n", "got fe80::1, a link-local address"},
		// A zone makes net.ParseIP see a name; the address is still the
		// metadata service's.
		{"metadata address v6 with a zone", "fleet:\n  store: redis://[fd00:ec2::254%25eth0]:6379\n  hosts: [a]\n", "got fd00:ec2::254%eth0, a link-local address"},
		{"link-local v6 with a zone", "fleet:\n  store: redis://[fe80::a9fe:a9fe%25eth0]:6379\n  hosts: [a]\n", "got fe80::a9fe:a9fe%eth0, a link-local address"},
		{"metadata address v4-mapped", "fleet:\n  store: redis://[::ffff:169.254.169.254]:6379\n  hosts: [a]\n", "got ::ffff:169.254.169.254, a link-local address"},
		{"unspecified", "fleet:\n  store: redis://0.0.0.0:6379\n  hosts: [a]\n", "got 0.0.0.0, an unspecified or multicast address"},
		{"parallel 0", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  parallel: 0\n", "envs/fl.yaml:9: fleet.parallel: want how many hosts may deploy at once, 1 to 2 (the number of hosts), got 0"},
		{"parallel garbage", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  parallel: two\n", "envs/fl.yaml:9: fleet.parallel:"},
		{"leaseTTL 0s", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  leaseTTL: 0s\n", "envs/fl.yaml:9: fleet.leaseTTL: want a duration of at least 3s such as \"30s\", got 0s"},
		{"leaseTTL garbage", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  leaseTTL: soon\n", `envs/fl.yaml:9: fleet.leaseTTL: want a duration such as "2s" or "1m", got "soon"`},
		{"canaryBake without canary", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  canaryBake: 10m\n", "envs/fl.yaml:9: fleet.canaryBake: set without fleet.canary"},
		{"canaryBake negative", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  canary: a\n  canaryBake: -1m\n", "envs/fl.yaml:10: fleet.canaryBake: want a duration of 0s (no bake) or more"},
		{"canary not a host", "fleet:\n  store: redis://x:1\n  hosts: [a, b]\n  canary: z\n", `envs/fl.yaml:9: fleet.canary: want the first of fleet.hosts (the canary deploys first), got "z"`},
		{"afterBake without after", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  afterBake: 30m\n", "envs/fl.yaml:9: fleet.afterBake: set without fleet.after"},
		{"after no such env", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: nosuch\n", "envs/fl.yaml:9: fleet.after: envs/nosuch.yaml not found at this commit; want the env of the region before this one, with a fleet section"},
		{"after no fleet", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: single\n", "envs/fl.yaml:9: fleet.after: envs/single.yaml has no fleet section"},
		{"after a loop", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: loop\n", "envs/fl.yaml:9: fleet.after: the regions wait for one another in a loop (fl → loop → fl): none would ever deploy"},
		{"after a longer loop", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: loop2\n", "envs/fl.yaml:9: fleet.after: the regions wait for one another in a loop (fl → loop2 → loop3 → fl)"},
		{"after a chain with a loop further on", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: loop4\n", "envs/fl.yaml:9: fleet.after: the regions wait for one another in a loop (fl → loop4 → loop5 → loop4)"},
		{"after broken", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: broken\n", "envs/fl.yaml:9: fleet.after: envs/broken.yaml does not load (reconciler validate --env broken says why)"},
		{"auth not a reference", "fleet:\n  store: redis://x:1\n  hosts: [a]\n  auth: \"redis://:hunter2@x:1\"\n", "envs/fl.yaml:9: fleet.auth: not a secret reference (value not shown)"},
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

// TestFleetAfterChain: a chain of regions that ends loads.
func TestFleetAfterChain(t *testing.T) {
	for _, after := range []string{"chain", "escape"} {
		if _, err := loadFleet(t, "fleet:\n  store: redis://x:1\n  hosts: [a]\n  after: "+after+"\n"); err != nil {
			t.Errorf("after %s: %v", after, err)
		}
	}
}

// TestFleetZeroBakes: a bake written as 0s is no bake, not the default.
func TestFleetZeroBakes(t *testing.T) {
	e, err := loadFleet(t, "fleet:\n  store: redis://x\n  hosts: [a, b]\n  canary: a\n  canaryBake: 0s\n  after: us\n  afterBake: 0s\n")
	if err != nil {
		t.Fatal(err)
	}
	if e.Fleet.CanaryBake.D() != 0 || e.Fleet.AfterBake.D() != 0 {
		t.Errorf("canaryBake %s, afterBake %s; want 0s as written", e.Fleet.CanaryBake.D(), e.Fleet.AfterBake.D())
	}
}

func TestUnfitStoreIP(t *testing.T) {
	for ip, unfit := range map[string]bool{
		"169.254.169.254": true, "169.254.1.2": true, "fd00:ec2::254": true, "fe80::1": true,
		"0.0.0.0": true, "::": true, "224.0.0.1": true, "64:ff9b::a9fe:a9fe": true, "64:ff9b::169.254.169.254": true,
		"127.0.0.1": false, "10.0.3.4": false, "172.31.250.1": false, "::1": false, "203.0.113.9": false, "64:ff9b::a00:304": false,
	} {
		if got := UnfitStoreIP(net.ParseIP(ip)) != ""; got != unfit {
			t.Errorf("UnfitStoreIP(%s) refuses: %v, want %v", ip, got, unfit)
		}
	}
	for host, unfit := range map[string]bool{
		"fd00:ec2::254%eth0": true, "fe80::1%lo": true, "169.254.169.254": true, "::ffff:a9fe:a9fe": true,
		"::1%lo": false, "cache.example.com": false, "2852039166": false, // a name: the dialer judges what it resolves to
	} {
		if got := UnfitStoreHost(host) != ""; got != unfit {
			t.Errorf("UnfitStoreHost(%s) refuses: %v, want %v", host, got, unfit)
		}
	}
	if UnfitStoreIP(nil) != "" {
		t.Error("a name (nil IP) is refused")
	}
}

// TestAfterStoreInSettings: the store of the region before (fleet.after),
// which this env's hosts send the password of that env's fleet.auth to,
// is in this env's settings: a change of that store or reference in the
// other env's file changes this env's preview. The reference is hashed.
func TestAfterStoreInSettings(t *testing.T) {
	settings := func(usFleet string) map[string]string {
		t.Helper()
		fsys := fleetFS(fleetBase + "fleet:\n  store: redis://127.0.0.1:6379\n  hosts: [a]\n  after: us\n")
		fsys[EnvPath("us")] = &fstest.MapFile{Data: []byte(strings.ReplaceAll(fleetBase, "fl", "us") + usFleet)}
		e, err := Load(fsys, "fl")
		if err != nil {
			t.Fatal(err)
		}
		vals := map[SecretRef]string{}
		for _, ref := range e.SecretRefs() {
			vals[ref] = "x"
		}
		d, err := Resolve(e, fsys, "c1", vals)
		if err != nil {
			t.Fatal(err)
		}
		return DisplaySettings(d.Settings, []byte("key"))
	}
	a := settings("fleet:\n  store: redis://cache-us:6379\n  auth: env:US_PW\n  hosts: [u]\n")
	if a["fleet.after.store"] != `"redis://cache-us:6379"` || !strings.HasPrefix(a["fleet.after.auth"], "(secret reference) (hidden, ") {
		t.Fatalf("settings: %v", a)
	}
	b := settings("fleet:\n  store: redis://cache.example.net:6379\n  auth: env:OTHER_PW\n  hosts: [u]\n")
	if b["fleet.after.store"] == a["fleet.after.store"] || b["fleet.after.auth"] == a["fleet.after.auth"] {
		t.Errorf("a change of the other env's store and auth is not in this env's settings:\n%v\n%v", a, b)
	}
	if strings.Contains(b["fleet.after.auth"], "OTHER_PW") {
		t.Errorf("the reference is shown: %s", b["fleet.after.auth"])
	}
}
