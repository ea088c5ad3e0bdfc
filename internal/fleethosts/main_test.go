package fleethosts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/fleet/redisstore"
)

// reconcilerBin is the path of the reconciler binary, built once for this
// test binary by buildReconciler (without -race: the agents are the
// programs under test, not this test). Every helper that runs it
// (newCluster, startAgent, fleetStatus, applyAll) builds it first, after
// the checks that skip a test, so that a run without root does not pay
// for the build.
var reconcilerBin string

var built struct {
	once sync.Once
	err  error
}

// buildReconciler builds reconcilerBin once; it fails t when the build does.
func buildReconciler(t testing.TB) {
	t.Helper()
	built.once.Do(func() {
		cmd := exec.Command("go", "build", "-o", reconcilerBin, "github.com/developer-mesh/reconciler/cmd/reconciler")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build reconciler: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "fleethosts-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		// The hosts' processes read it through their mount namespace.
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		reconcilerBin = filepath.Join(dir, "reconciler")
		return m.Run()
	}()
	os.Exit(code)
}

// hostNames are the fleet's hosts in rollout order.
var hostNames = []string{"h1", "h2", "h3"}

// cluster is three hosts on one fabric, the test app images loaded in each.
type cluster struct {
	t     testing.TB
	f     *testenv.Fabric
	hosts []*testenv.Host
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{t: t, f: testenv.StartFabric(t)}
	buildReconciler(t)
	for _, n := range hostNames {
		h := c.f.StartHost(t, n)
		h.AppImageVariant(t, "reconciler-test/app:v1", "v1")
		h.AppImageVariant(t, "reconciler-test/app:v2", "v2")
		c.hosts = append(c.hosts, h)
	}
	return c
}

// fleetEnv is one env deployed to the cluster's hosts from one repo.
type fleetEnv struct {
	t    testing.TB
	c    *cluster
	name string
	port int // nginx listen port of service web, on every host
	repo *testenv.Repo
	bare string
	top  string // the fleet section (or nothing)
}

func (c *cluster) newEnv(t testing.TB, port int, top string) *fleetEnv {
	t.Helper()
	e := &fleetEnv{t: t, c: c, name: testenv.UniqueEnv(t), port: port, repo: testenv.NewRepo(t), top: top}
	for _, h := range c.hosts {
		testenv.RemoveEnvContainers(t, h.Docker, e.name)
	}
	return e
}

// version is what a commit deploys: the image, VERSION, extra env lines.
type version struct {
	image, version string
	env            string // YAML lines under web.env, indented 6
}

func (e *fleetEnv) yaml(v version) string {
	h := e.c.hosts[0] // the nginx paths are the same on every host
	if v.image == "" {
		v.image = "reconciler-test/app:v1"
	}
	return fmt.Sprintf(`environment: %s
nginx:
  confDir: %s
  test: %s
  reload: %s
  logDir: %s
services:
  web:
    image: %s
    containerPort: 8080
    listen: "%d"
    env:
      VERSION: %s
%s    memory: 64m
    health:
      path: /health
      interval: 100ms
      timeout: 1s
      healthyThreshold: 2
      unhealthyThreshold: 3
      startTimeout: 8s
    drain: 500ms
%s`, e.name, h.NginxConfDir, h.NginxTest, h.NginxReload, h.NginxLogDir, v.image, e.port, v.version, v.env, e.top)
}

// commit commits v and pushes it to the bare repository the agents follow.
func (e *fleetEnv) commit(v version) string {
	e.t.Helper()
	e.repo.Write("envs/"+e.name+".yaml", e.yaml(v))
	c := e.repo.Commit("deploy " + v.version)
	if e.bare == "" {
		e.bare = e.repo.Bare()
	} else {
		e.repo.Push()
	}
	return c
}

// url is the env's web service through h's nginx, from the test process.
func (e *fleetEnv) url(h *testenv.Host) string {
	return fmt.Sprintf("http://%s:%d/", h.Addr, e.port)
}

// serves reports whether h's nginx answers version for the env.
func (e *fleetEnv) serves(h *testenv.Host, v string) bool {
	code, body := h.Get(e.url(h))
	return code == 200 && strings.Contains(body, "version="+v+" ")
}

func (e *fleetEnv) wantServes(h *testenv.Host, v string) {
	e.t.Helper()
	if code, body := h.Get(e.url(h)); code != 200 || !strings.Contains(body, "version="+v+" ") {
		e.t.Fatalf("host %s serves %d %q, want version=%s", h.Name, code, body, v)
	}
}

// agentPorts numbers the agents' listen ports (9101, 9102, ...).
var agentPorts atomic.Int32

// agentProc is `reconciler run --host` running inside a host.
type agentProc struct {
	t      testing.TB
	h      *testenv.Host
	addr   string
	cmd    *exec.Cmd
	log    *testenv.SyncBuffer
	exited chan struct{}
}

// startAgent runs the env's agent on h, with extra environment variables
// (name=value) and flags; it is stopped (SIGTERM) when the test ends.
func (e *fleetEnv) startAgent(h *testenv.Host, environ []string, flags ...string) *agentProc {
	e.t.Helper()
	buildReconciler(e.t)
	// Each agent of this process listens on a port of its own, so that
	// two envs' agents may share a host.
	port := 9100 + agentPorts.Add(1)
	a := &agentProc{t: e.t, h: h, addr: fmt.Sprintf("%s:%d", h.Addr, port), log: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	args := append([]string{"run", "--env", e.name, "--repo", "file://" + e.bare, "--state-dir", h.StateDir,
		"--host", h.Name, "--listen", a.addr}, flags...)
	a.cmd = h.Command(context.Background(), reconcilerBin, args...)
	a.cmd.Env = append(a.cmd.Env, environ...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		e.t.Fatalf("start the agent on %s: %v", h.Name, err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	e.t.Cleanup(func() {
		a.stop()
		if e.t.Failed() {
			e.t.Logf("agent log of %s:\n%s", h.Name, a.log.String())
		}
	})
	waitFor(e.t, "the agent's /healthz on "+h.Name, 20*time.Second, func() bool {
		select {
		case <-a.exited:
			e.t.Fatalf("agent on %s exited at start:\n%s", h.Name, a.log.String())
		default:
		}
		resp, err := http.Get("http://" + a.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return a
}

// stop sends SIGTERM and waits (kills it after 60s).
func (a *agentProc) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(60 * time.Second):
		a.t.Errorf("agent on %s did not stop within 60s of SIGTERM; killing it", a.h.Name)
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

func (a *agentProc) status() agent.Status {
	a.t.Helper()
	resp, err := http.Get("http://" + a.addr + "/status")
	if err != nil {
		a.t.Fatalf("GET /status of %s: %v", a.h.Name, err)
	}
	defer resp.Body.Close()
	var s agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		a.t.Fatalf("/status of %s: %v", a.h.Name, err)
	}
	return s
}

// metric returns one series of the agent's /metrics (0 when absent).
func (a *agentProc) metric(series string) float64 {
	a.t.Helper()
	resp, err := http.Get("http://" + a.addr + "/metrics")
	if err != nil {
		a.t.Fatalf("GET /metrics of %s: %v", a.h.Name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				a.t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// converged waits until every agent applied commit and waits for nothing,
// and every host's nginx serves v.
func (e *fleetEnv) converged(agents []*agentProc, commit, v string, d time.Duration) {
	e.t.Helper()
	for _, a := range agents {
		waitFor(e.t, a.h.Name+" applies "+commit[:12], d, func() bool {
			s := a.status()
			return s.AppliedCommit == commit && s.Waiting == "" && e.serves(a.h, v)
		})
	}
}

// fleetStatus runs `reconciler fleet status` from the machine (the store
// is on the fabric's gateway) with extra environment variables.
func (e *fleetEnv) fleetStatus(environ []string, args ...string) string {
	e.t.Helper()
	buildReconciler(e.t)
	cmd := exec.Command(reconcilerBin, append([]string{"fleet", "status", "--env", e.name, "--repo", e.repo.Dir,
		"--state-dir", e.t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), environ...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("fleet status: %v\n%s%s", err, out.String(), errb.String())
	}
	return out.String()
}

// openStore reads the env's store from the test.
func (e *fleetEnv) openStore(r *testenv.Redis) *redisstore.Store {
	e.t.Helper()
	st, err := redisstore.Open(e.name, redisstore.Options{URL: r.URL(), Password: r.Password, TLS: r.TLS})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

func snapshot(t testing.TB, st *redisstore.Store) fleet.Snapshot {
	t.Helper()
	s, err := st.Snapshot(context.Background(), hostNames, 1)
	if err != nil {
		t.Fatalf("store snapshot: %v", err)
	}
	return s
}

// loads is one keep-alive load per host through its nginx.
type loads []*testenv.Load

func (e *fleetEnv) startLoads(limit time.Duration) loads {
	var ls loads
	for _, h := range e.c.hosts {
		ls = append(ls, testenv.StartLoad(e.t, e.url(h), 2, limit))
	}
	return ls
}

// end stops the loads and fails the test on any failed request.
func (ls loads) end(t testing.TB) {
	t.Helper()
	for _, l := range ls {
		l.End()
	}
	for _, l := range ls {
		if n := l.Failed.Load(); n != 0 || l.OK.Load() == 0 {
			t.Errorf("load through %s: %d ok, %d failed: %v", l.URL, l.OK.Load(), n, l.Errors())
		} else {
			t.Logf("load through %s: %d ok, 0 failed, versions %v", l.URL, l.OK.Load(), l.Versions())
		}
	}
}

// firstSeen records, per host, when its nginx first answered each version.
type firstSeen struct {
	mu   sync.Mutex
	at   map[string]map[string]time.Time
	stop chan struct{}
	wg   sync.WaitGroup
}

func (e *fleetEnv) watch() *firstSeen {
	w := &firstSeen{at: map[string]map[string]time.Time{}, stop: make(chan struct{})}
	deadline := time.Now().Add(5 * time.Minute)
	for _, h := range e.c.hosts {
		w.at[h.Name] = map[string]time.Time{}
	}
	for _, h := range e.c.hosts {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-w.stop:
					return
				default:
				}
				code, body := h.Get(e.url(h))
				now := time.Now()
				if code == 200 {
					v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
					w.mu.Lock()
					if _, ok := w.at[h.Name][v]; !ok {
						w.at[h.Name][v] = now
					}
					w.mu.Unlock()
				}
				time.Sleep(20 * time.Millisecond) // sampling, not synchronisation
			}
		}()
	}
	e.t.Cleanup(w.end)
	return w
}

func (w *firstSeen) end() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// first is when host first served v (zero if never).
func (w *firstSeen) first(host, v string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at[host][v]
}

// waitFor polls cond every 50ms until it holds or d passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
