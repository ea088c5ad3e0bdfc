package fleethosts

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/developer-mesh/reconciler/reconciler/fleet"
)

// agentFlags make the agents poll often, as a webhook would trigger them.
var agentFlags = []string{"--interval", "300ms", "--heal-interval", "1s"}

// TestFleetOnThreeHosts runs a three-host fleet (h1, h2, h3, each its own
// network and mount namespace, dockerd, nginx and state dir) with the real
// agent on each, coordinated through Debian's redis-server on the fabric:
// once over plain redis:// with AUTH from an env: reference, once over
// rediss:// (TLS) with AUTH from a file: reference. A steady keep-alive
// load goes through every host's nginx throughout, and no request fails.
func TestFleetOnThreeHosts(t *testing.T) {
	c := newCluster(t)
	t.Run("rollout in order", func(t *testing.T) { testRolloutInOrder(t, c) })
	t.Run("a failing host halts the next", func(t *testing.T) { testFailingHostHalts(t, c) })
}

// testRolloutInOrder: with h1 the canary (bake 3s) and parallel 1, a new
// commit reaches h1 first, h2 only after h1's bake, h3 only after h2's
// recorded success, as the store's records and each host's nginx show;
// all three converge to the commit.
func testRolloutInOrder(t *testing.T, c *cluster) {
	const bake = 3 * time.Second
	r := c.f.StartRedis(t, false)
	const pwVar = "RCL_FLEET_PW"
	environ := []string{pwVar + "=" + r.Password}
	top := fmt.Sprintf("fleet:\n  store: %s\n  auth: env:%s\n  hosts: [h1, h2, h3]\n  canary: h1\n  canaryBake: %s\n  parallel: 1\n  leaseTTL: 3s\n",
		r.URL(), pwVar, bake)
	e := c.newEnv(t, 80, top)
	v1 := e.commit(version{version: "v1"})
	var agents []*agentProc
	for _, h := range c.hosts {
		agents = append(agents, e.startAgent(h, environ, agentFlags...))
	}
	e.converged(agents, v1, "v1", 2*time.Minute)
	st := e.openStore(r)

	ls := e.startLoads(3 * time.Minute)
	w := e.watch()
	pushed := time.Now()
	v2 := e.commit(version{image: "reconciler-test/app:v2", version: "v2"})
	waitFor(t, "h2 waits while the canary h1 bakes", 60*time.Second, func() bool {
		return strings.Contains(agents[1].status().Waiting, "the canary h1 bakes "+v2[:12])
	})
	e.wantServes(c.hosts[0], "v2")
	e.wantServes(c.hosts[1], "v1")
	e.wantServes(c.hosts[2], "v1")
	e.converged(agents, v2, "v2", 2*time.Minute)
	w.end()
	ls.end(t)

	snap := snapshot(t, st)
	var prev fleet.Result
	for i, n := range hostNames {
		a := snap.Hosts[n].Applied
		if a.Commit != v2 || a.Result != fleet.Succeeded {
			t.Fatalf("store: %s applied %+v, want %s succeeded", n, a, v2[:12])
		}
		if i > 0 && (!a.At.After(prev.At) || a.Token <= prev.Token) {
			t.Fatalf("store: %s recorded at %s (token %d), not after %s at %s (token %d)", n, a.At, a.Token, prev.Host, prev.At, prev.Token)
		}
		prev = a
	}
	// What each host's nginx served, sampled from the test: h2 switched
	// only after h1's bake, h3 only after h2's recorded success.
	h1At, h2At := snap.Hosts["h1"].Applied.At, snap.Hosts["h2"].Applied.At
	f1, f2, f3 := w.first("h1", "v2"), w.first("h2", "v2"), w.first("h3", "v2")
	t.Logf("v2 first served: h1 %s, h2 %s, h3 %s after the commit's push (h1 recorded +%s, h2 +%s)",
		f1.Sub(pushed).Round(time.Millisecond), f2.Sub(pushed).Round(time.Millisecond), f3.Sub(pushed).Round(time.Millisecond),
		h1At.Sub(pushed).Round(time.Millisecond), h2At.Sub(pushed).Round(time.Millisecond))
	switch {
	case f1.IsZero() || f2.IsZero() || f3.IsZero():
		t.Fatalf("v2 never seen on a host: h1 %v, h2 %v, h3 %v", f1, f2, f3)
	case !f2.After(h1At.Add(bake)):
		t.Fatalf("h2 served v2 at %s, before the canary's bake ended (%s + %s)", f2, h1At, bake)
	case !f3.After(h2At):
		t.Fatalf("h3 served v2 at %s, before h2 recorded it (%s)", f3, h2At)
	}

	out := e.fleetStatus(environ)
	t.Logf("fleet status:\n%s", out)
	for _, n := range hostNames {
		if !hostLine(out, n, v2[:12]+"  succeeded "+v2[:12], "healthy") {
			t.Fatalf("fleet status does not show %s applied, succeeded and healthy on %s:\n%s", v2[:12], n, out)
		}
	}
	if strings.Contains(out, "halted") {
		t.Fatalf("fleet status shows a halt:\n%s", out)
	}
	for _, a := range agents {
		if strings.Contains(a.log.String(), r.Password) {
			t.Fatalf("the store's password is in the log of %s", a.h.Name)
		}
	}
}

// testFailingHostHalts: a commit C whose new image fails its health check
// on h2 only (h2's engine holds another image under the same tag) is
// deployed by h1, fails on h2, which stays on the previous commit by
// itself, and halts h3, which stays on the previous commit and says so in
// /status, its metrics and `fleet status`. A newer commit clears the halt
// and all three converge to it. The store is rediss:// with AUTH.
func testFailingHostHalts(t *testing.T, c *cluster) {
	r := c.f.StartRedis(t, true)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(r.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The agents trust the test's CA as a host trusts its own.
	environ := []string{"SSL_CERT_FILE=" + r.CAFile}
	top := fmt.Sprintf("fleet:\n  store: %s\n  auth: file:%s\n  hosts: [h1, h2, h3]\n  leaseTTL: 3s\n", r.URL(), pwFile)
	if !strings.HasPrefix(r.URL(), "rediss://") {
		t.Fatalf("store %s is not TLS", r.URL())
	}
	e := c.newEnv(t, 8000, top)
	// The app answers /health 503 while UNHEALTHY_FILE exists: C points
	// it at /variant, which only h2's image of the tag has.
	const bad = "reconciler-test/fleet-app:c"
	for _, h := range c.hosts {
		variant := ""
		if h.Name == "h2" {
			variant = "broken"
		}
		h.AppImageVariant(t, bad, variant)
	}
	v1 := e.commit(version{version: "v1"})
	var agents []*agentProc
	for _, h := range c.hosts {
		agents = append(agents, e.startAgent(h, environ, agentFlags...))
	}
	e.converged(agents, v1, "v1", 2*time.Minute)
	st := e.openStore(r)

	ls := e.startLoads(3 * time.Minute)
	cc := e.commit(version{image: bad, version: "v3", env: "      UNHEALTHY_FILE: /variant\n"})
	h1, h2, h3 := agents[0], agents[1], agents[2]
	waitFor(t, "h1 applies C", time.Minute, func() bool { return h1.status().AppliedCommit == cc && e.serves(h1.h, "v3") })
	waitFor(t, "h2 fails C", time.Minute, func() bool { return h2.status().FailedCommit == cc })
	if msg := h2.status().LastError; !strings.Contains(msg, "wait-healthy") || !strings.Contains(msg, "rolled back") {
		t.Fatalf("h2's error on C = %q, want a failed health check, rolled back", msg)
	}
	halted := "the rollout of " + cc[:12] + " is halted: host h2 failed it"
	waitFor(t, "h3 reports the halt", time.Minute, func() bool { return strings.Contains(h3.status().Waiting, halted) })
	if f, ok := h3.status().Fleet.(map[string]any); !ok || f["halted"] != true {
		t.Fatalf("h3's /status fleet = %#v, want halted", h3.status().Fleet)
	}
	env := fmt.Sprintf("env=%q", e.name)
	if got := h3.metric(`reconciler_fleet_halted{` + env + `}`); got != 1 {
		t.Fatalf("h3: reconciler_fleet_halted = %v, want 1", got)
	}
	// h2 rolled back by itself: it serves v1 and runs no container of C.
	for _, a := range []*agentProc{h2, h3} {
		e.wantServes(a.h, "v1")
		if s := a.status(); s.AppliedCommit != v1 {
			t.Fatalf("%s: applied %s, want %s", a.h.Name, s.AppliedCommit, v1[:12])
		}
	}
	list, err := h2.h.Docker.ContainerList(context.Background(), container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", "reconciler.env="+e.name))})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range list {
		if ct.Image == bad {
			t.Fatalf("h2 still runs %s (%s, %s) after failing C", ct.Names, ct.Image, ct.State)
		}
	}
	snap := snapshot(t, st)
	if snap.Halt == nil || snap.Halt.Commit != cc || snap.Halt.Host != "h2" || snap.Hosts["h3"].Applied.Commit != v1 ||
		snap.Hosts["h2"].Last.Result != fleet.Failed || snap.Hosts["h2"].Applied.Commit != v1 {
		t.Fatalf("store: halt %+v, h2 %+v, h3 %+v", snap.Halt, snap.Hosts["h2"], snap.Hosts["h3"])
	}
	out := e.fleetStatus(environ)
	if !strings.Contains(out, "halted: the rollout of "+cc[:12]+" stopped at h2") || !strings.Contains(out, "failed "+cc[:12]) {
		t.Fatalf("fleet status:\n%s", out)
	}

	v4 := e.commit(version{image: "reconciler-test/app:v2", version: "v4"})
	e.converged(agents, v4, "v4", 2*time.Minute)
	ls.end(t)
	if snap := snapshot(t, st); snap.Halt != nil {
		t.Fatalf("store: the halt %+v is still there after %s succeeded", snap.Halt, v4[:12])
	}
	if got := h3.metric(`reconciler_fleet_halted{` + env + `}`); got != 0 {
		t.Fatalf("h3: reconciler_fleet_halted = %v after the newer commit, want 0", got)
	}
	if out := e.fleetStatus(environ); strings.Contains(out, "halted") {
		t.Fatalf("fleet status still shows a halt:\n%s", out)
	}
	for _, a := range agents {
		if strings.Contains(a.log.String(), r.Password) {
			t.Fatalf("the store's password is in the log of %s", a.h.Name)
		}
	}
}

// hostLine reports whether the text of `fleet status` has a line for host
// holding every one of parts.
func hostLine(out, host string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, host+" ") {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	}
	return false
}
