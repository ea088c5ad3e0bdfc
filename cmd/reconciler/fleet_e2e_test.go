package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/fleet/redisstore"
)

// TestFleetAgentOrder runs the real agent (`run --host h1`) of the second
// host of a two-host fleet on the real engine and nginx, with Debian's
// redis-server as the store; the first host, h0, is played by the test
// through the store, which lets it choose h0's results (internal/fleethosts
// runs fleets of real hosts, each in namespaces of its own). h1 deploys a commit only after h0
// recorded it, stays on the last good commit when h0's failure halts the
// next one, deploys nothing new but keeps healing while the store is down,
// and goes on when it is back; no request through nginx fails.
func TestFleetAgentOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	r := testenv.StartRedis(t, false)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(pwFile, []byte(r.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	top := fmt.Sprintf("fleet:\n  store: %s\n  auth: file:%s\n  hosts: [h0, h1]\n  leaseTTL: 3s\n", r.URL(), pwFile)
	bare := ""
	commit := func(version, image string) string {
		c := w.commit(spec{image: image, version: version, config: "a: 1\n", top: top}, "deploy "+version)
		if bare == "" {
			bare = w.repo.Bare()
		} else {
			w.repo.Push()
		}
		return c
	}
	st, err := redisstore.Open(w.env, redisstore.Options{URL: r.URL(), Password: r.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// h0 deploys c with result (through the store, as its agent would).
	h0 := func(c, result string) {
		t.Helper()
		ctx := context.Background()
		l, err := st.Acquire(ctx, "h0/1", 1, 3*time.Second)
		for err != nil {
			time.Sleep(20 * time.Millisecond) // polling the lease
			l, err = st.Acquire(ctx, "h0/1", 1, 3*time.Second)
		}
		res := fleet.Result{Host: "h0", Commit: c, Result: result, At: time.Now()}
		if result == fleet.Failed {
			res.Error = "health check failed"
		}
		if err := st.Record(ctx, l, res); err != nil {
			t.Fatal(err)
		}
		if err := st.Release(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	waiting := func(a *runningAgent, want string) func() bool {
		return func() bool { return strings.Contains(agentStatus(t, a.addr).Waiting, want) }
	}

	v1 := commit("v1", "")
	a := w.startAgent("file://"+bare, "--host", "h1", "--interval", "300ms", "--heal-interval", "1s")
	waitFor(t, "h1 waits for h0", 20*time.Second, waiting(a, "waiting for host h0 to deploy "+v1[:12]+" first"))
	if w.serving("v1") {
		t.Fatal("h1 deployed v1 before h0")
	}
	h0(v1, fleet.Succeeded)
	waitFor(t, "v1 served", 30*time.Second, func() bool { return w.serving("v1") })
	load := startLoad(t, w.port, 4)

	v2 := commit("v2", "reconciler-test/app:v2")
	waitFor(t, "h1 waits for h0 on v2", 20*time.Second, waiting(a, "waiting for host h0 to deploy "+v2[:12]))
	w.wantServing("v1")
	h0(v2, fleet.Succeeded)
	waitFor(t, "v2 served", 30*time.Second, func() bool { return w.serving("v2") })
	waitFor(t, "h1's result recorded", 10*time.Second, func() bool {
		s, err := st.Snapshot(context.Background(), []string{"h1"}, 1)
		return err == nil && s.Hosts["h1"].Applied.Commit == v2 && s.Hosts["h1"].Health != nil && s.Hosts["h1"].Health.Healthy
	})

	v3 := commit("v3", "")
	h0(v3, fleet.Failed)
	waitFor(t, "h1 reports the halt", 20*time.Second, waiting(a, "the rollout of "+v3[:12]+" is halted: host h0 failed it"))
	env := fmt.Sprintf("env=%q", w.env)
	if got := metric(t, a.addr, `reconciler_fleet_halted{`+env+`}`); got != 1 {
		t.Fatalf("fleet_halted = %v", got)
	}
	w.wantServing("v2")
	code, out, errOut := runCLI(t, "fleet", "status", "--env", w.env, "--repo", w.repo.Dir, "--state-dir", w.stateDir)
	if code != 0 || !strings.Contains(out, "halted: the rollout of "+v3[:12]+" stopped at h0") || !strings.Contains(out, "succeeded "+v2[:12]) {
		t.Fatalf("fleet status: exit %d\n%s%s", code, out, errOut)
	}

	r.Stop()
	v4 := commit("v4", "")
	waitFor(t, "h1 says the store is down", 20*time.Second, waiting(a, "coordination store unreachable: deploying nothing new"))
	waitFor(t, "store_up 0", 10*time.Second, func() bool { return metric(t, a.addr, `reconciler_fleet_store_up{`+env+`}`) == 0 })
	// Healing needs no store.
	for n := range w.containers() {
		if strings.Contains(n, "-web-") {
			if err := w.cli.ContainerRemove(context.Background(), n, container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	load.end() // the removal by hand is not a deploy: its failures are not counted
	waitFor(t, "web back with the store down", 30*time.Second, func() bool { return w.serving("v2") })
	load = startLoad(t, w.port, 4)
	w.wantServing("v2")

	r.Start() // an empty store, as after a failover without persistence
	h0(v4, fleet.Succeeded)
	waitFor(t, "v4 served", 30*time.Second, func() bool { return w.serving("v4") })
	waitFor(t, "v4 applied", 30*time.Second, func() bool {
		s := agentStatus(t, a.addr)
		return s.AppliedCommit == v4 && s.Waiting == ""
	})
	load.end()
	if n := load.failed.Load(); n != 0 {
		t.Fatalf("%d failed requests through nginx: %v", n, load.errs)
	}
	if load.ok.Load() == 0 {
		t.Fatal("no request went through")
	}
	if strings.Contains(a.stderr.String(), r.Password) {
		t.Fatal("the store's password is in the agent's log")
	}
}
