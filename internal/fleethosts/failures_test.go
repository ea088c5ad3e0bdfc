package fleethosts

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
)

// TestFleetFailures runs the failures the fleet must survive on three real
// hosts (as TestFleetOnThreeHosts does, on a cluster of its own): the
// agent holding the rollout lease killed with -9 in the middle of its
// deploy, the store stopped in the middle of a rollout, and two regions
// (an env each, sharing a base file) rolling one commit out in order. A
// steady keep-alive load goes through every host's nginx throughout, and
// no request fails.
func TestFleetFailures(t *testing.T) {
	c := newCluster(t)
	t.Run("lease holder killed -9 mid-deploy", func(t *testing.T) { testHolderKilled(t, c) })
	t.Run("store stopped mid-rollout", func(t *testing.T) { testStoreStopped(t, c) })
	t.Run("two regions in order", func(t *testing.T) { testRegionsInOrder(t, c) })
}

// jsonLogFlags are agentFlags with JSON logs, which the tests read.
var jsonLogFlags = append([]string{"--log-format", "json"}, agentFlags...)

// commitYAML commits the env file text (as e.yaml makes it, edited) and
// pushes it.
func (e *fleetEnv) commitYAML(text, msg string) string {
	e.t.Helper()
	e.repo.Write("envs/"+e.name+".yaml", text)
	c := e.repo.Commit(msg)
	e.repo.Push()
	return c
}

// logLine is one line of an agent's JSON log.
type logLine struct {
	TS     string `json:"ts"`
	Msg    string `json:"msg"`
	Commit string `json:"commit"`
	Token  int64  `json:"token"`
}

// logged returns the lines of a's JSON log whose message is msg, for
// commit (a short hash) when it is not "".
func (a *agentProc) logged(msg, commit string) []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(a.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg && (commit == "" || l.Commit == commit) {
			out = append(out, l)
		}
	}
	return out
}

// at is the time of a log line.
func (l logLine) at(t testing.TB) time.Time {
	t.Helper()
	at, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
	if err != nil {
		t.Fatalf("log time %q: %v", l.TS, err)
	}
	return at
}

// running lists the env's containers on h: name → state.
func (e *fleetEnv) running(h *testenv.Host) map[string]string {
	e.t.Helper()
	list, err := h.Docker.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "reconciler.env="+e.name))})
	if err != nil {
		e.t.Fatalf("containers of %s on %s: %v", e.name, h.Name, err)
	}
	out := map[string]string{}
	for _, ct := range list {
		out[strings.TrimPrefix(ct.Names[0], "/")] = ct.State
	}
	return out
}

// noSecretInLogs fails t when a secret is in an agent's log.
func noSecretInLogs(t testing.TB, agents []*agentProc, secrets ...string) {
	t.Helper()
	for _, a := range agents {
		for _, s := range secrets {
			if strings.Contains(a.log.String(), s) {
				t.Fatalf("a store's password is in the log of %s", a.h.Name)
			}
		}
	}
}

// countRunning counts the running containers of a running() listing.
func countRunning(states map[string]string) int {
	n := 0
	for _, state := range states {
		if state == "running" {
			n++
		}
	}
	return n
}

// fleetField reads one string field of the fleet view in a's /status.
func (a *agentProc) fleetField(name string) string {
	a.t.Helper()
	m, _ := a.status().Fleet.(map[string]any)
	s, _ := m[name].(string)
	return s
}

// testHolderKilled: the agent of h1 is killed with -9 while it deploys v2
// under the rollout lease (its holder and token read from the store, the
// deploy from its log and h1's engine). Until the lease's TTL runs out no
// agent takes it: not h2 (its turn comes after h1 has v2), not the agent
// of h1 restarted at once, which says who holds it. Then the restarted
// agent takes a lease with a higher token, converges h1 as after any
// interrupted deploy (one container running, `diff` in sync), records v2,
// and the rollout goes on to h2 and h3.
func testHolderKilled(t *testing.T, c *cluster) {
	// Long enough for the restarted agent to meet the dead holder's lease
	// on a loaded machine.
	const ttl = 15 * time.Second
	r := c.f.StartRedis(t, false)
	const pwVar = "RCL_FLEET_PW"
	environ := []string{pwVar + "=" + r.Password}
	top := fmt.Sprintf("fleet:\n  store: %s\n  auth: env:%s\n  hosts: [h1, h2, h3]\n  leaseTTL: %s\n", r.URL(), pwVar, ttl)
	e := c.newEnv(t, 8101, top)
	v1 := e.commit(version{version: "v1"})
	var agents []*agentProc
	for _, h := range c.hosts {
		agents = append(agents, e.startAgent(h, environ, jsonLogFlags...))
	}
	e.converged(agents, v1, "v1", 2*time.Minute)
	st := e.openStore(r)
	ls := e.startLoads(4 * time.Minute)

	// v2 becomes healthy slowly (two checks 3s apart): h1's deploy lasts
	// long enough to be killed in the middle.
	slow := strings.Replace(e.yaml(version{image: "reconciler-test/app:v2", version: "v2"}), "interval: 100ms", "interval: 3s", 1)
	v2 := e.commitYAML(slow, "deploy v2, slow to be healthy")
	h1 := c.hosts[0]
	var held fleet.Lease
	waitFor(t, "h1 holds the lease and deploys v2", time.Minute, func() bool {
		s := snapshot(t, st)
		if len(s.Leases) != 1 || !strings.HasPrefix(s.Leases[0].Holder, "h1/") {
			return false
		}
		held = s.Leases[0]
		// The new color runs beside the live one, not yet healthy.
		return countRunning(e.running(h1)) == 2 && len(agents[0].logged("took the rollout lease", v2[:12])) == 1
	})
	pid, err := strconv.Atoi(strings.TrimPrefix(held.Holder, "h1/"))
	if err != nil || pid != agents[0].cmd.Process.Pid {
		t.Fatalf("lease holder %q is not h1's agent (pid %d)", held.Holder, agents[0].cmd.Process.Pid)
	}
	if got := agents[0].logged("took the rollout lease", v2[:12])[0].Token; got != held.Token {
		t.Fatalf("h1's log says token %d, the store %d", got, held.Token)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-agents[0].exited
	// The lease outlives its holder until its TTL. Snapshot dates the
	// expiry from when its reply came: the time before the request bounds
	// it from below.
	before := time.Now()
	after := snapshot(t, st)
	if len(after.Leases) != 1 || after.Leases[0].Token != held.Token {
		t.Fatalf("lease after the kill: %+v, want %+v still held", after.Leases, held)
	}
	expires := after.Leases[0].Expires.Add(-time.Since(before))
	// The deploy was left half-done: the new color runs beside the live one.
	if n := countRunning(e.running(h1)); n != 2 {
		t.Fatalf("h1 after the kill: %v, want the new color running beside the live one", e.running(h1))
	}
	if app := after.Hosts["h1"].Applied.Commit; app != v1 {
		t.Fatalf("store: h1 applied %s after the kill, want %s", app, v1[:12])
	}

	agents[0] = e.startAgent(h1, environ, jsonLogFlags...)
	waitFor(t, "the restarted agent of h1 waits for the dead holder's lease", 30*time.Second, func() bool {
		return strings.Contains(agents[0].status().Waiting, fmt.Sprintf("waiting for the rollout lease, held by %s (token %d)", held.Holder, held.Token))
	})
	waitFor(t, "h2 waits for h1", 10*time.Second, func() bool {
		return strings.Contains(agents[1].status().Waiting, "waiting for host h1 to deploy "+v2[:12]+" first")
	})
	// Nobody takes the lease before it expires; then h1's new agent does.
	var next fleet.Lease
	waitFor(t, "a new lease", ttl+30*time.Second, func() bool {
		s := snapshot(t, st)
		if len(s.Leases) == 1 && s.Leases[0].Token == held.Token {
			return false
		}
		if len(s.Leases) == 1 {
			next = s.Leases[0]
			// Redis expires the key on the same clock the test reads;
			// a few milliseconds of slack for its rounding.
			if now := time.Now(); now.Before(expires.Add(-10 * time.Millisecond)) {
				t.Fatalf("lease %+v taken at %s, before the dead holder's expired at %s", next, now, expires)
			}
			return true
		}
		return false
	})
	t.Logf("killed h1's agent holding %s (token %d); its lease expired %s later; the restarted agent took token %d after %s",
		held.Holder, held.Token, expires.Sub(killed).Round(time.Millisecond), next.Token, time.Since(killed).Round(time.Millisecond))
	if want := fmt.Sprintf("h1/%d", agents[0].cmd.Process.Pid); next.Holder != want || next.Token <= held.Token {
		t.Fatalf("new lease %+v, want held by %s with a token above %d", next, want, held.Token)
	}
	for _, h := range c.hosts[1:] {
		e.wantServes(h, "v1")
	}

	e.converged(agents, v2, "v2", 3*time.Minute)
	ls.end(t)

	// h1 converged as after any interrupted deploy: the live v2 running,
	// at most its previous release kept stopped, and nothing left to do.
	got := e.running(h1)
	if n := countRunning(got); n != 1 || len(got) > 2 {
		t.Fatalf("h1's containers after the restart: %v, want one running and at most one stopped", got)
	}
	buildReconciler(t)
	diff := h1.Command(context.Background(), reconcilerBin, "diff", "--env", e.name, "--repo", e.repo.Dir, "--state-dir", h1.StateDir)
	diff.Env = append(diff.Env, environ...)
	if out, err := diff.CombinedOutput(); err != nil {
		t.Fatalf("diff on h1 after the rollout: %v (want exit 0, in sync)\n%s", err, out)
	}
	snap := snapshot(t, st)
	var prev int64
	for _, name := range hostNames {
		a := snap.Hosts[name].Applied
		if a.Commit != v2 || a.Token <= prev {
			t.Fatalf("store: %s applied %+v, want %s with a token above %d", name, a, v2[:12], prev)
		}
		prev = a.Token
	}
	if tok := snap.Hosts["h1"].Applied.Token; tok != next.Token {
		t.Fatalf("h1's result is recorded with token %d, want the new lease's %d", tok, next.Token)
	}
	noSecretInLogs(t, agents, r.Password)
}

// testStoreStopped: while h2 and h3 wait for the canary h1's bake of v2,
// the store stops. Every agent says so (/status, log, metrics), h2 and h3
// deploy nothing new and keep serving v1, and an app container removed on
// h3 is put back (v1, not v2). The store comes back empty, as after a
// failover without persistence: the rollout goes on from the hosts'
// heartbeats and completes.
func testStoreStopped(t *testing.T, c *cluster) {
	const bake = 15 * time.Second
	r := c.f.StartRedis(t, false)
	const pwVar = "RCL_FLEET_PW"
	environ := []string{pwVar + "=" + r.Password}
	top := fmt.Sprintf("fleet:\n  store: %s\n  auth: env:%s\n  hosts: [h1, h2, h3]\n  canary: h1\n  canaryBake: %s\n  leaseTTL: 3s\n",
		r.URL(), pwVar, bake)
	e := c.newEnv(t, 8102, top)
	v1 := e.commit(version{version: "v1"})
	var agents []*agentProc
	for _, h := range c.hosts {
		agents = append(agents, e.startAgent(h, environ, jsonLogFlags...))
	}
	e.converged(agents, v1, "v1", 2*time.Minute)
	st := e.openStore(r)
	ls := e.startLoads(4 * time.Minute)

	v2 := e.commit(version{image: "reconciler-test/app:v2", version: "v2"})
	waitFor(t, "h1 deploys v2 and h2 waits for its bake", time.Minute, func() bool {
		return snapshot(t, st).Hosts["h1"].Applied.Commit == v2 && strings.Contains(agents[1].status().Waiting, "the canary h1 bakes "+v2[:12])
	})
	r.Stop()
	outage := time.Now()

	env := fmt.Sprintf("env=%q", e.name)
	for _, a := range agents {
		waitFor(t, a.h.Name+" says the store is down", 30*time.Second, func() bool {
			return a.metric(`reconciler_fleet_store_up{`+env+`}`) == 0 && a.fleetField("storeError") != ""
		})
	}
	for _, a := range agents[1:] {
		waitFor(t, a.h.Name+" waits for the store", 30*time.Second, func() bool {
			return strings.Contains(a.status().Waiting, "coordination store unreachable: deploying nothing new, serving the applied commit")
		})
		if a.metric(`reconciler_fleet_waiting{`+env+`}`) != 1 {
			t.Fatalf("%s: reconciler_fleet_waiting is not 1 with the store down", a.h.Name)
		}
	}
	waitFor(t, "h1 logs the outage", 30*time.Second, func() bool {
		return len(agents[0].logged("coordination store unreachable: no new commit deploys until it answers; this host keeps serving and repairing drift", "")) > 0
	})

	// Healing needs no store: h3's app container, removed by hand, is put
	// back at the applied commit. The removal is not a deploy: h3's load
	// pauses around it (its requests so far are checked).
	h3 := c.hosts[2]
	ls[2].End()
	if n := ls[2].Failed.Load(); n != 0 {
		t.Fatalf("load through %s before the removal: %d failed: %v", ls[2].URL, n, ls[2].Errors())
	}
	for name, state := range e.running(h3) {
		if state == "running" {
			if err := h3.Docker.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "h3 healed with the store down", time.Minute, func() bool { return e.serves(h3, "v1") })
	ls[2] = testenv.StartLoad(t, e.url(h3), 2, 3*time.Minute)
	for _, a := range agents[1:] {
		e.wantServes(a.h, "v1")
		if s := a.status(); s.AppliedCommit != v1 || !strings.Contains(s.Waiting, "coordination store unreachable") {
			t.Fatalf("%s with the store down: applied %s, waiting %q", a.h.Name, s.AppliedCommit, s.Waiting)
		}
	}
	e.wantServes(c.hosts[0], "v2")
	if !strings.Contains(agents[2].log.String(), "coordination store unreachable") {
		t.Fatal("h3's log does not say the store is unreachable")
	}
	t.Logf("store down for %s", time.Since(outage).Round(time.Millisecond))

	r.Start() // empty: nothing was saved
	e.converged(agents, v2, "v2", 2*time.Minute)
	ls.end(t)
	for _, a := range agents {
		if got := a.metric(`reconciler_fleet_store_up{` + env + `}`); got != 1 {
			t.Fatalf("%s: reconciler_fleet_store_up = %v after the store came back", a.h.Name, got)
		}
	}
	// The bake of the canary counted from when it started running v2
	// healthy (its heartbeat), before the outage: h2 went on once the
	// store answered, and h1 never recorded v2 again.
	snap := snapshot(t, st)
	if a := snap.Hosts["h1"].Applied; a.Commit != "" {
		t.Fatalf("store: h1 recorded %+v after the store lost its data, want nothing (known from its heartbeat)", a)
	}
	for _, name := range []string{"h2", "h3"} {
		if a := snap.Hosts[name].Applied; a.Commit != v2 {
			t.Fatalf("store: %s applied %+v, want %s", name, a, v2[:12])
		}
	}
	if h := snap.Hosts["h1"].Health; h == nil || h.Commit != v2 || !h.Healthy || h.Since.After(outage) {
		t.Fatalf("store: h1's heartbeat %+v, want v2 healthy since before the outage at %s", h, outage)
	}
	noSecretInLogs(t, agents, r.Password)
}

// testRegionsInOrder: envs <u>-r1 (hosts h1, h2) and <u>-r2 (host h3),
// each with its own store, share envs/<u>-base.yaml through extends:; r2
// has fleet.after: <u>-r1 and afterBake 8s. A commit that changes the base
// (v2) and r1's image, followed by `reconciler promote` of the images from
// r1 to r2, merged: r1's hosts deploy it, r2 waits (its /status and
// `fleet status` say for what), and starts only once r1 has run it healthy
// for afterBake.
func testRegionsInOrder(t *testing.T, c *cluster) {
	const bake = 8 * time.Second
	s1, s2 := c.f.StartRedis(t, false), c.f.StartRedis(t, false)
	environ := []string{"RCL_R1_PW=" + s1.Password, "RCL_R2_PW=" + s2.Password}
	u := testenv.UniqueEnv(t)
	repo := testenv.NewRepo(t)
	r1 := &fleetEnv{t: t, c: c, name: u + "-r1", port: 8103, repo: repo}
	r2 := &fleetEnv{t: t, c: c, name: u + "-r2", port: 8103, repo: repo}
	for _, h := range c.hosts {
		testenv.RemoveEnvContainers(t, h.Docker, r1.name)
		testenv.RemoveEnvContainers(t, h.Docker, r2.name)
	}
	h := c.hosts[0] // the nginx paths are the same on every host
	base := func(v string) string {
		return fmt.Sprintf(`# What both regions share.
nginx:
  confDir: %s
  test: %s
  reload: %s
  logDir: %s
services:
  web:
    containerPort: 8080
    listen: "8103"
    env:
      VERSION: %s
    health:
      path: /health
      interval: 100ms
      timeout: 1s
      healthyThreshold: 2
      unhealthyThreshold: 3
      startTimeout: 8s
    drain: 500ms
`, h.NginxConfDir, h.NginxTest, h.NginxReload, h.NginxLogDir, v)
	}
	region := func(name, image, fleetYAML string) string {
		return fmt.Sprintf("extends: %s-base.yaml\nenvironment: %s\nservices:\n  web:\n    image: %s\nfleet:\n%s", u, name, image, fleetYAML)
	}
	fleet1 := fmt.Sprintf("  store: %s\n  auth: env:RCL_R1_PW\n  hosts: [h1, h2]\n  leaseTTL: 3s\n", s1.URL())
	fleet2 := fmt.Sprintf("  store: %s\n  auth: env:RCL_R2_PW\n  hosts: [h3]\n  leaseTTL: 3s\n  after: %s\n  afterBake: %s\n", s2.URL(), r1.name, bake)
	repo.Write("envs/"+u+"-base.yaml", base("v1"))
	repo.Write("envs/"+r1.name+".yaml", region(r1.name, "reconciler-test/app:v1", fleet1))
	repo.Write("envs/"+r2.name+".yaml", region(r2.name, "reconciler-test/app:v1", fleet2))
	c1 := repo.Commit("regions r1 and r2 at v1")
	bare := repo.Bare()
	r1.bare, r2.bare = bare, bare

	a1 := []*agentProc{r1.startAgent(c.hosts[0], environ, jsonLogFlags...), r1.startAgent(c.hosts[1], environ, jsonLogFlags...)}
	a2 := []*agentProc{r2.startAgent(c.hosts[2], environ, jsonLogFlags...)}
	r1.converged(a1, c1, "v1", 2*time.Minute)
	r2.converged(a2, c1, "v1", 2*time.Minute)
	st1, st2 := r1.openStore(s1), r2.openStore(s2)
	ls := r1.startLoads(4 * time.Minute) // port 8103 on every host: both regions

	// v2: the base's VERSION and r1's image, then promote r1's images to
	// r2 on a branch, merged as its PR would be.
	repo.Write("envs/"+u+"-base.yaml", base("v2"))
	repo.Write("envs/"+r1.name+".yaml", region(r1.name, "reconciler-test/app:v2", fleet1))
	repo.Commit("v2 in the base, r1's image")
	buildReconciler(t)
	promote := exec.Command(reconcilerBin, "promote", "--repo", repo.Dir, "--from", r1.name, "--to", r2.name, "--author", "Promoter <p@example.com>")
	out, err := promote.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "promote "+r1.name+" → "+r2.name) {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	branch := strings.TrimSpace(repo.Git("branch", "--list", "--format=%(refname:short)", "promote/*"))
	if branch == "" || strings.Contains(branch, "\n") {
		t.Fatalf("promote made branches %q, want one", branch)
	}
	repo.Git("merge", "-q", "--ff-only", branch)
	if b := repo.Git("show", "HEAD:envs/"+r2.name+".yaml"); !strings.Contains(b, "image: reconciler-test/app:v2") {
		t.Fatalf("r2's file after the promotion:\n%s", b)
	}
	c2 := strings.TrimSpace(repo.Git("rev-parse", "HEAD"))
	w := r1.watch()
	repo.Push()

	waitFor(t, "r2 waits for r1", time.Minute, func() bool {
		return strings.Contains(a2[0].status().Waiting, "region "+r1.name)
	})
	st := r2.fleetStatus(environ)
	if !strings.Contains(st, "region: after "+r1.name+": this env does not start "+c2[:12]+" yet: ") {
		t.Fatalf("fleet status of r2 while r1 deploys:\n%s", st)
	}
	r1.converged(a1, c2, "v2", 2*time.Minute)
	var r1Done time.Time
	snap1, err := st1.Snapshot(context.Background(), []string{"h1", "h2"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"h1", "h2"} {
		a := snap1.Hosts[name].Applied
		if a.Commit != c2 {
			t.Fatalf("r1's store: %s applied %+v, want %s", name, a, c2[:12])
		}
		if a.At.After(r1Done) {
			r1Done = a.At
		}
	}
	bakeEnd := r1Done.Add(bake)
	if time.Now().Before(bakeEnd.Add(-time.Second)) {
		st := r2.fleetStatus(environ)
		if !strings.Contains(st, "region "+r1.name+" bakes "+c2[:12]+" until") {
			t.Fatalf("fleet status of r2 while r1 bakes:\n%s", st)
		}
		r2.wantServes(c.hosts[2], "v1")
	}
	r2.converged(a2, c2, "v2", 2*time.Minute)
	w.end()
	ls.end(t)

	// h3 took r2's lease for c2, and served it, only after r1's bake.
	took := a2[0].logged("took the rollout lease", c2[:12])
	if len(took) != 1 {
		t.Fatalf("h3's log has %d leases taken for %s, want 1", len(took), c2[:12])
	}
	// (The log's time has milliseconds: the slack of its rounding.)
	if at := took[0].at(t); at.Before(bakeEnd.Add(-time.Millisecond)) {
		t.Fatalf("h3 took the lease for %s at %s, before r1's bake ended at %s (r1's last host at %s)", c2[:12], at, bakeEnd, r1Done)
	}
	t.Logf("r1's last host recorded %s at %s; h3 (r2) took its lease %s after that (afterBake %s)",
		c2[:12], r1Done.Format("15:04:05.000"), took[0].at(t).Sub(r1Done).Round(time.Millisecond), bake)
	if f := w.first("h3", "v2"); f.IsZero() || f.Before(bakeEnd) {
		t.Fatalf("h3 first served v2 at %s, r1's bake ended at %s", f, bakeEnd)
	}
	if f1, f2 := w.first("h1", "v2"), w.first("h2", "v2"); f1.IsZero() || f2.IsZero() || !f2.After(f1) {
		t.Fatalf("r1 served v2 first on h1 at %s, h2 at %s: want h1 first", f1, f2)
	}
	snap2, err := st2.Snapshot(context.Background(), []string{"h3"}, 1)
	if err != nil || snap2.Hosts["h3"].Applied.Commit != c2 {
		t.Fatalf("r2's store: %+v, %v", snap2.Hosts["h3"], err)
	}
	if st := r2.fleetStatus(environ); !strings.Contains(st, "region: after "+r1.name+": "+r1.name+" runs "+c2[:12]+" healthy past fleet.afterBake") {
		t.Fatalf("fleet status of r2 at the end:\n%s", st)
	}
	noSecretInLogs(t, append(a1, a2...), s1.Password, s2.Password)
}
