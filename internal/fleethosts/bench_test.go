package fleethosts

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkRollout compares, in one run on the same three hosts, a
// three-host rollout through the fleet (the real agents, --interval 500ms,
// parallel 1, no canary, Debian's redis-server on the fabric) with three
// single-host deploys of the same change, one `reconciler apply` per host,
// one after the other. Each iteration deploys a new commit both ways and
// times it from the push (or the first apply) until every host's nginx
// serves the new version.
//
//	bench/fleet.sh   (go test -run '^$' -bench Rollout -benchtime 3x ./internal/fleethosts/)
func BenchmarkRollout(b *testing.B) {
	c := newCluster(b)
	r := c.f.StartRedis(b, false)
	const pwVar = "RCL_FLEET_PW"
	environ := []string{pwVar + "=" + r.Password}
	top := fmt.Sprintf("fleet:\n  store: %s\n  auth: env:%s\n  hosts: [h1, h2, h3]\n  leaseTTL: 3s\n", r.URL(), pwVar)
	fl := c.newEnv(b, 80, top)
	one := c.newEnv(b, 8000, "")

	v1 := fl.commit(version{version: "v1"})
	var agents []*agentProc
	for _, h := range c.hosts {
		agents = append(agents, fl.startAgent(h, environ, "--interval", "500ms", "--heal-interval", "10s"))
	}
	fl.converged(agents, v1, "v1", 2*time.Minute)
	one.commit(version{version: "v1"})
	one.applyAll(b, "v1")

	var fleetTotal, applyTotal time.Duration
	images := []string{"reconciler-test/app:v2", "reconciler-test/app:v1"}
	i := 0
	for b.Loop() {
		i++
		v := version{image: images[i%2], version: fmt.Sprintf("r%d", i)}

		start := time.Now()
		commit := fl.commit(v)
		fl.converged(agents, commit, v.version, 2*time.Minute)
		fleetTotal += time.Since(start)

		start = time.Now()
		one.commit(v)
		one.applyAll(b, v.version)
		applyTotal += time.Since(start)
	}
	n := float64(i)
	b.ReportMetric(fleetTotal.Seconds()/n, "fleet-s/rollout")
	b.ReportMetric(applyTotal.Seconds()/n, "apply3-s/rollout")
	b.ReportMetric(fleetTotal.Seconds()/applyTotal.Seconds(), "ratio")
}

// applyAll runs `reconciler apply` of the env on each host in turn, and
// checks that each host's nginx serves v after its apply.
func (e *fleetEnv) applyAll(tb testing.TB, v string) {
	tb.Helper()
	buildReconciler(tb)
	for _, h := range e.c.hosts {
		out, err := h.Command(context.Background(), reconcilerBin, "apply", "--env", e.name, "--repo", e.repo.Dir,
			"--state-dir", h.StateDir).CombinedOutput()
		if err != nil {
			tb.Fatalf("apply on %s: %v\n%s", h.Name, err, out)
		}
		if !e.serves(h, v) {
			code, body := h.Get(e.url(h))
			tb.Fatalf("after apply, %s serves %d %q, want %s", h.Name, code, strings.TrimSpace(body), v)
		}
	}
}
