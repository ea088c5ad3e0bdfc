package fleet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/fleet/redisstore"
	"github.com/developer-mesh/reconciler/state"
)

// This file tests the ordering, fencing and halts with the real Redis and
// real agent loops; each host's deploy is a function (the host's own
// deploy is tested in reconciler/host and end to end in cmd/reconciler).

// world is the tip of the branch and a log of what the hosts did.
type world struct {
	mu     sync.Mutex
	tip    agent.Revision
	events []string
	// fail makes host's deploy of commit fail; block holds it until closed.
	fail  map[string]bool
	block map[string]chan struct{}
}

func (w *world) setTip(h string) {
	w.mu.Lock()
	w.tip = agent.Revision{Hash: h}
	w.mu.Unlock()
}

func (w *world) log(e string) {
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
}

func (w *world) index(e string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.events {
		if x == e {
			return i
		}
	}
	return -1
}

func fleetEnv(env, url string, hosts []string, ttl time.Duration) *state.Env {
	return &state.Env{Environment: env, Fleet: &state.Fleet{Store: url, Hosts: hosts, Parallel: 1, LeaseTTL: &state.Duration{Duration: ttl}}}
}

// gate makes host's Gate: its deploy logs "host start C" and "host done C".
func (w *world) gate(r *testenv.Redis, env, host string, hosts []string, ttl time.Duration) *fleet.Gate {
	return &fleet.Gate{Env: env, Host: host, HealthTTL: time.Minute,
		Load: func(agent.Revision) (*state.Env, error) { return fleetEnv(env, r.URL(), hosts, ttl), nil },
		Open: func(_ context.Context, e *state.Env) (fleet.Store, error) {
			return redisstore.Open(env, redisstore.Options{URL: e.Fleet.Store, Password: r.Password, TLS: r.TLS})
		},
		Inner: func(ctx context.Context, rev agent.Revision, mode agent.Mode) (agent.Outcome, error) {
			if mode != agent.Deploy {
				return agent.Outcome{}, nil
			}
			key := host + " " + rev.Hash
			w.log(key + " start")
			w.mu.Lock()
			fail, block := w.fail[key], w.block[key]
			w.mu.Unlock()
			if block != nil {
				select {
				case <-block:
				case <-ctx.Done():
					return agent.Outcome{}, ctx.Err()
				}
			}
			if fail {
				w.log(key + " failed")
				return agent.Outcome{}, errors.New("health check failed")
			}
			w.log(key + " done")
			return agent.Outcome{Changes: []string{"web: deploy " + rev.Hash}}, nil
		}}
}

// run starts an agent loop for g; it stops in t.Cleanup.
func (w *world) run(t *testing.T, g *fleet.Gate) *agent.Agent {
	a := agent.New(agent.Config{Env: g.Env, Interval: 40 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		Fetch: func(context.Context) (agent.Revision, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.tip, nil
		},
		Sync: g.Sync, Fleet: func() any { return g.Status() }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

func applied(a *agent.Agent, c string) func() bool {
	return func() bool { return a.Status().AppliedCommit == c }
}

// TestRolloutOrderAndHalt: three hosts deploy c1 one after the other; the
// second fails c2, which halts the third on c1; c3 clears the halt.
func TestRolloutOrderAndHalt(t *testing.T) {
	r := testenv.StartRedis(t, false)
	env, hosts := "i18-order", []string{"h1", "h2", "h3"}
	w := &world{fail: map[string]bool{"h2 c2": true}}
	w.setTip("c1")
	var agents []*agent.Agent
	// Started in reverse: the order comes from the store, not from timing.
	for i := len(hosts) - 1; i >= 0; i-- {
		agents = append([]*agent.Agent{w.run(t, w.gate(r, env, hosts[i], hosts, 3*time.Second))}, agents...)
	}
	for _, a := range agents {
		waitFor(t, "c1 everywhere", applied(a, "c1"))
	}
	for i := 1; i < len(hosts); i++ {
		prev, next := w.index(hosts[i-1]+" c1 done"), w.index(hosts[i]+" c1 start")
		if prev < 0 || next < prev {
			t.Fatalf("%s started c1 before %s was done: %q", hosts[i], hosts[i-1], w.events)
		}
	}

	w.setTip("c2")
	waitFor(t, "h2 fails c2", func() bool { return agents[1].Status().FailedCommit == "c2" })
	waitFor(t, "h3 reports the halt", func() bool { return strings.Contains(agents[2].Status().Waiting, "halted: host h2 failed it") })
	if st := agents[2].Status(); st.AppliedCommit != "c1" || w.index("h3 c2 start") >= 0 {
		t.Fatalf("h3 deployed past the halt: applied %s, events %q", st.AppliedCommit, w.events)
	}
	if fs := agents[2].Status().Fleet.(fleet.Status); !fs.Halted || fs.Fleet.Halt == nil || fs.Fleet.Halt.Commit != "c2" {
		t.Fatalf("h3's fleet status: %+v", fs)
	}
	if agents[0].Status().AppliedCommit != "c2" {
		t.Fatalf("h1: %+v", agents[0].Status())
	}

	w.setTip("c3")
	for _, a := range agents {
		waitFor(t, "c3 everywhere", applied(a, "c3"))
	}
	waitFor(t, "the halt cleared", func() bool {
		fs := agents[2].Status().Fleet.(fleet.Status)
		return fs.Fleet != nil && fs.Fleet.Halt == nil && fs.Fleet.Hosts["h3"].Applied.Commit == "c3"
	})
}

// TestStoreDownMidRollout: the store stops while h1 deploys; h1 finishes
// (its host is not left half-way) but cannot record, h2 deploys nothing
// new and says why, both keep healing; when the store is back the rollout
// goes on.
func TestStoreDownMidRollout(t *testing.T) {
	r := testenv.StartRedis(t, false)
	env, hosts := "i18-down", []string{"h1", "h2"}
	release := make(chan struct{})
	w := &world{block: map[string]chan struct{}{"h1 c2": release}}
	w.setTip("c1")
	a1 := w.run(t, w.gate(r, env, "h1", hosts, 3*time.Second))
	a2 := w.run(t, w.gate(r, env, "h2", hosts, 3*time.Second))
	waitFor(t, "c1 on h2", applied(a2, "c1"))
	w.setTip("c2")
	waitFor(t, "h1 deploying c2", func() bool { return w.index("h1 c2 start") >= 0 })
	r.Stop()
	close(release)
	waitFor(t, "h2 says the store is unreachable", func() bool {
		return strings.Contains(a2.Status().Waiting, "coordination store unreachable: deploying nothing new")
	})
	waitFor(t, "h1's deploy ended", func() bool { return w.index("h1 c2 done") >= 0 })
	if a1.Status().AppliedCommit == "c2" {
		t.Fatalf("h1 counts c2 as applied though the fleet does not know it")
	}
	if w.index("h2 c2 start") >= 0 {
		t.Fatalf("h2 deployed with the store down: %q", w.events)
	}
	r.Start() // empty: a store that lost its data
	waitFor(t, "c2 on h1", applied(a1, "c2"))
	waitFor(t, "c2 on h2", applied(a2, "c2"))
	if a2.Status().Waiting != "" {
		t.Fatalf("h2 still waiting: %s", a2.Status().Waiting)
	}
}

const helperEnv = "I18_FLEET_HOLDER"

// TestMain runs the lease holder of TestHolderKilled when asked to.
func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		holder(spec)
		return
	}
	os.Exit(m.Run())
}

// holder is a process that takes the lease for h1 and deploys for ever:
// spec is "URL PASSWORD ENV".
func holder(spec string) {
	f := strings.Fields(spec)
	url, password, env := f[0], f[1], f[2]
	g := &fleet.Gate{Env: env, Host: "h1",
		Load: func(agent.Revision) (*state.Env, error) {
			return fleetEnv(env, url, []string{"h1", "h2"}, time.Second), nil
		},
		Open: func(_ context.Context, e *state.Env) (fleet.Store, error) {
			return redisstore.Open(env, redisstore.Options{URL: e.Fleet.Store, Password: password})
		},
		Inner: func(ctx context.Context, _ agent.Revision, _ agent.Mode) (agent.Outcome, error) {
			fmt.Println("deploying")
			<-ctx.Done() // a deploy that takes for ever
			return agent.Outcome{}, ctx.Err()
		}}
	_, err := g.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// TestHolderKilled: a process holding the lease is killed with -9 mid-
// deploy; the restarted agent of its host is refused the lease until the
// TTL ran out, then deploys with a higher token, and the rollout goes on.
func TestHolderKilled(t *testing.T) {
	r := testenv.StartRedis(t, false)
	env, hosts := "i18-kill", []string{"h1", "h2"}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+r.URL()+" "+r.Password+" "+env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "deploying\n" {
		t.Fatalf("holder: %q, %v", line, err)
	}
	st, err := redisstore.Open(env, redisstore.Options{URL: r.URL(), Password: r.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap, err := st.Snapshot(context.Background(), hosts, 1)
	if err != nil || len(snap.Leases) != 1 || snap.Leases[0].Holder != fmt.Sprintf("h1/%d", cmd.Process.Pid) {
		t.Fatalf("lease before the kill: %+v, %v", snap.Leases, err)
	}
	dead := snap.Leases[0]
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	w := &world{}
	w.setTip("c1")
	g1 := w.gate(r, env, "h1", hosts, time.Second)
	// The restarted agent asks at once: the dead holder's lease still runs.
	if _, err := g1.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy); !errors.Is(err, agent.ErrWait) || !strings.Contains(err.Error(), fmt.Sprintf("held by h1/%d (token %d)", cmd.Process.Pid, dead.Token)) {
		t.Fatalf("sync while the dead holder's lease runs: %v", err)
	}
	a1 := w.run(t, g1)
	a2 := w.run(t, w.gate(r, env, "h2", hosts, time.Second))
	waitFor(t, "c1 on h1", applied(a1, "c1"))
	waitFor(t, "c1 on h2", applied(a2, "c1"))
	snap, err = st.Snapshot(context.Background(), hosts, 1)
	if err != nil || snap.Hosts["h1"].Applied.Token <= dead.Token {
		t.Fatalf("h1's record: token %d, the dead holder's %d (%v)", snap.Hosts["h1"].Applied.Token, dead.Token, err)
	}
}
