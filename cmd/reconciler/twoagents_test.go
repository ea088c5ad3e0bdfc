package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestTwoAgentsOneHost: two agents for two environments (as dev and staging
// share one host) run side by side on one engine, one nginx and one state
// dir, each with its own --listen, lock and mirror; both deploy, and a
// commit that changes only one env redeploys only that one.
func TestTwoAgentsOneHost(t *testing.T) {
	t.Parallel()
	dev := newWorld(t)
	staging := *dev // same engine, nginx, repo and state dir
	staging.env, staging.port = testenv.UniqueEnv(t), testenv.FreePort(t)
	testenv.RemoveEnvContainers(t, dev.cli, staging.env)

	dev.repo.Write("envs/"+dev.env+".yaml", dev.envYAML(spec{version: "dev-v1", config: "a: 1\n"}))
	staging.repo.Write("envs/"+staging.env+".yaml", staging.envYAML(spec{version: "staging-v1", config: "a: 1\n"}))
	dev.repo.Commit("dev and staging v1")
	bare := dev.repo.Bare()
	a1 := dev.startAgent("file://"+bare, "--interval", "300ms", "--heal-interval", "0")
	a2 := staging.startAgent("file://"+bare, "--interval", "300ms", "--heal-interval", "0")
	if a1.addr == a2.addr {
		t.Fatalf("both agents listen on %s", a1.addr)
	}
	waitFor(t, "dev served", 40*time.Second, func() bool { return dev.serving("dev-v1") })
	waitFor(t, "staging served", 40*time.Second, func() bool { return staging.serving("staging-v1") })

	stagingIDs := staging.containers()
	dev.repo.Write("envs/"+dev.env+".yaml", dev.envYAML(spec{image: "reconciler-test/app:v2", version: "dev-v2", config: "a: 1\n"}))
	dev.repo.Commit("dev v2")
	dev.repo.Push()
	waitFor(t, "dev v2 served", 40*time.Second, func() bool { return dev.serving("dev-v2") })
	staging.wantServing("staging-v1")
	if got := staging.containers(); fmt.Sprint(got) != fmt.Sprint(stagingIDs) {
		t.Fatalf("a dev-only commit changed staging's containers: %v → %v", stagingIDs, got)
	}
	for _, env := range []string{dev.env, staging.env} {
		if _, err := os.Stat(filepath.Join(dev.stateDir, "git", env)); err != nil {
			t.Errorf("no mirror of its own for %s: %v", env, err)
		}
		if recs := (&world{t: t, env: env, stateDir: dev.stateDir}).history(); len(recs) == 0 || recs[len(recs)-1].Result != "succeeded" {
			t.Errorf("history of %s: %+v", env, recs)
		}
	}
	if code := a1.stop(); code != 0 {
		t.Fatalf("dev agent exit %d", code)
	}
	if code := a2.stop(); code != 0 {
		t.Fatalf("staging agent exit %d", code)
	}
}
