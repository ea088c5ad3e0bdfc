package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/history"
)

// fake is the git remote and the host: a tip, per-commit sync errors, a
// list of calls, and a history in memory.
type fake struct {
	mu       sync.Mutex
	tip      string
	fetchErr []error // consumed one per fetch
	fetches  int
	syncErr  map[string]error
	drift    []string // what the next sync finds
	calls    []string // "apply HASH" / "check HASH"
	modes    []Mode   // the mode of each call
	records  []history.Record
}

func (f *fake) fetch(context.Context) (Revision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fetches++
	if len(f.fetchErr) > 0 {
		err := f.fetchErr[0]
		f.fetchErr = f.fetchErr[1:]
		return Revision{}, err
	}
	return Revision{Hash: f.tip, Author: "A <a@x>", Message: "msg " + f.tip}, nil
}

func (f *fake) sync(_ context.Context, rev Revision, mode Mode) (Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	apply := mode != Check
	verb := "check"
	if apply {
		verb = "apply"
	}
	f.calls = append(f.calls, verb+" "+rev.Hash)
	f.modes = append(f.modes, mode)
	out := Outcome{Changes: f.drift, Services: []Service{{Service: "web", Commit: rev.Hash}}}
	if apply {
		f.drift = nil
	}
	return out, f.syncErr[rev.Hash]
}

func (f *fake) Append(r history.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, r)
	return nil
}

func (f *fake) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fake) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (f *fake) results() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.records {
		out = append(out, r.Trigger+":"+r.Commit+":"+r.Result)
	}
	return strings.Join(out, " ")
}

// start runs an agent on f until the test ends.
func start(t *testing.T, f *fake, tweak func(*Config)) *Agent {
	t.Helper()
	if f.syncErr == nil {
		f.syncErr = map[string]error{}
	}
	cfg := Config{Env: "test", Interval: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond, Repair: true,
		Fetch: f.fetch, Sync: f.sync, History: f, Log: zaptest.NewLogger(t)}
	if tweak != nil {
		tweak(&cfg)
	}
	a := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestFailedCommitNotRetriedFixDeployed: a failing commit is tried once;
// the next commit is deployed; readiness and metrics follow.
func TestFailedCommitNotRetriedFixDeployed(t *testing.T) {
	t.Parallel()
	f := &fake{tip: "a", syncErr: map[string]error{"b": fmt.Errorf("apply: %w", reconciler.ErrRolledBack)}}
	a := start(t, f, nil)
	m := a.cfg.Metrics
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" && a.Status().Ready })

	f.set(func() { f.tip = "b" })
	eventually(t, "b failed", func() bool { return a.Status().FailedCommit == "b" })
	before := f.fetches
	eventually(t, "more polls", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fetches > before+20 })
	if n := f.count("apply b"); n != 1 {
		t.Fatalf("failed commit b applied %d times, want once", n)
	}
	if s := a.Status(); s.Ready || s.AppliedCommit != "a" || !strings.Contains(s.LastError, "commit b failed") {
		t.Fatalf("status after failure = %+v", s)
	}
	if v := m.Rollbacks.WithLabelValues("test").Value(); v != 1 {
		t.Fatalf("rollbacks = %v", v)
	}

	f.set(func() { f.tip = "c" })
	eventually(t, "c applied", func() bool { return a.Status().AppliedCommit == "c" && a.Status().Ready })
	if got, want := f.results(), "start:a:succeeded poll:b:failed poll:c:succeeded"; got != want {
		t.Fatalf("history = %s, want %s", got, want)
	}
	f.mu.Lock()
	rolledBack := []bool{f.records[0].RolledBack, f.records[1].RolledBack, f.records[2].RolledBack}
	f.mu.Unlock()
	if rolledBack[0] || !rolledBack[1] || rolledBack[2] {
		t.Fatalf("history rolledBack = %v, want only b's", rolledBack)
	}
	if ok, failed := m.Deployments.WithLabelValues("test", "succeeded").Value(), m.Deployments.WithLabelValues("test", "failed").Value(); ok != 2 || failed != 1 {
		t.Fatalf("deployments succeeded %v failed %v", ok, failed)
	}
	if v := m.AppliedCommit.WithLabelValues("test", "c").Value(); v != 1 {
		t.Fatalf("applied_commit_info{c} = %v", v)
	}
	if n := m.AppliedCommit.Len(); n != 1 {
		t.Fatalf("applied_commit_info has %d series, want 1", n)
	}
}

// TestTransientErrorsRetry: fetch and Docker errors back off and retry,
// and never mark the commit failed.
func TestTransientErrorsRetry(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	f := &fake{tip: "a", fetchErr: []error{down, down, down}, syncErr: map[string]error{"a": Transient(down)}}
	a := start(t, f, func(c *Config) { c.Interval = time.Hour })
	eventually(t, "a tried", func() bool { return f.count("apply a") >= 2 })
	if s := a.Status(); s.Ready || s.FailedCommit != "" {
		t.Fatalf("status while Docker is down = %+v", s)
	}
	f.set(func() { delete(f.syncErr, "a") })
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" && a.Status().Ready })
	if v := a.cfg.Metrics.GitFetchErrors.WithLabelValues("test").Value(); v != 3 {
		t.Fatalf("fetch errors = %v, want 3", v)
	}
}

// TestRefused: a commit that fails verification is never synced.
func TestRefused(t *testing.T) {
	t.Parallel()
	f := &fake{tip: "unsigned"}
	a := start(t, f, func(c *Config) {
		c.Verify = func(_ context.Context, rev Revision) error {
			if rev.Hash == "unsigned" {
				return errors.New("commit is not signed")
			}
			return nil
		}
	})
	eventually(t, "refusal", func() bool { return a.Status().FailedCommit == "unsigned" })
	f.set(func() { f.tip = "signed" })
	eventually(t, "signed applied", func() bool { return a.Status().AppliedCommit == "signed" })
	if f.count("apply unsigned") != 0 || f.results() != "start:unsigned:refused poll:signed:succeeded" {
		t.Fatalf("calls %v history %s", f.calls, f.results())
	}
	if v := a.cfg.Metrics.SignatureRefusals.WithLabelValues("test").Value(); v != 1 {
		t.Fatalf("refusals = %v", v)
	}
}

// TestHeal: drift is repaired and counted; with Repair off it is reported
// and nothing is applied.
func TestHeal(t *testing.T) {
	t.Parallel()
	for _, repair := range []bool{true, false} {
		f := &fake{tip: "a"}
		a := start(t, f, func(c *Config) { c.Interval, c.HealInterval, c.Repair = time.Hour, 5*time.Millisecond, repair })
		eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
		f.set(func() { f.drift = []string{"+ web: create blue"} })
		m := a.cfg.Metrics
		if repair {
			eventually(t, "repair", func() bool { return m.DriftRepairs.WithLabelValues("test").Value() == 1 })
			// The record follows the metric; wait for it rather than race it.
			eventually(t, "the heal recorded", func() bool { return f.results() == "start:a:succeeded heal:a:succeeded" })
			continue
		}
		eventually(t, "drift reported", func() bool { return m.DriftDetected.WithLabelValues("test").Value() == 1 })
		if n := f.count("apply a"); n != 1 || len(a.Status().Drift) != 1 {
			t.Fatalf("--no-heal applied %d times, drift %v", n, a.Status().Drift)
		}
	}
}

// TestRestartSeedsFromHistory: the applied commit and a failed commit come
// back from the history; an interrupted deploy is retried.
func TestRestartSeedsFromHistory(t *testing.T) {
	t.Parallel()
	past := []history.Record{
		{Env: "test", Commit: "a", Result: history.Succeeded},
		{Env: "test", Commit: "b", Result: history.Failed, Error: "boom"},
	}
	f := &fake{tip: "b"}
	a := start(t, f, func(c *Config) { c.Past = past })
	eventually(t, "some polls", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fetches > 5 })
	if s := a.Status(); s.AppliedCommit != "a" || f.count("apply b") != 0 {
		t.Fatalf("after restart status %+v calls %v", s, f.calls)
	}

	past = append(past, history.Record{Env: "test", Commit: "c", Result: history.Interrupted})
	f2 := &fake{tip: "c"}
	a2 := start(t, f2, func(c *Config) { c.Past = past })
	eventually(t, "c applied", func() bool { return a2.Status().AppliedCommit == "c" })
}

// TestModesFromTheAgent: the agent, not the syncer, says whether a sync is
// a deploy or a repair. After a restart whose history says "a" is
// applied, the start-up convergence of "a" is a Heal (announced as
// drift.repaired), a new commit is a Deploy, and a --no-heal drift check
// is a Check.
func TestModesFromTheAgent(t *testing.T) {
	t.Parallel()
	f := &fake{tip: "a"}
	a := start(t, f, func(c *Config) {
		c.Past = []history.Record{{Env: "test", Commit: "a", Result: history.Succeeded}}
	})
	eventually(t, "the start-up heal", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.modes) >= 1 })
	f.set(func() { f.tip = "b" })
	eventually(t, "b applied", func() bool { return a.Status().AppliedCommit == "b" })
	f.mu.Lock()
	modes := append([]Mode(nil), f.modes...)
	f.mu.Unlock()
	if len(modes) < 2 || modes[0] != Heal || modes[len(modes)-1] != Deploy {
		t.Fatalf("modes %v (calls %v): want Heal at start, Deploy for the new commit", modes, f.calls)
	}

	g := &fake{tip: "a"}
	b := start(t, g, func(c *Config) { c.Interval, c.HealInterval, c.Repair = time.Hour, 5*time.Millisecond, false })
	eventually(t, "a applied", func() bool { return b.Status().AppliedCommit == "a" })
	eventually(t, "a drift check", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.modes) >= 2 })
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.modes[0] != Deploy || g.modes[1] != Check {
		t.Fatalf("modes %v: want Deploy, then Check for --no-heal", g.modes)
	}
}

// TestWebhook: signed requests trigger a fetch at once; unsigned or badly
// signed ones get 401 and trigger nothing.
func TestWebhook(t *testing.T) {
	t.Parallel()
	secret := []byte("hook-secret")
	f := &fake{tip: "a"}
	a := start(t, f, func(c *Config) { c.Interval = time.Hour })
	srv := httptest.NewServer(a.Handler(WebhookConfig{Secret: secret, Branch: "main"}))
	t.Cleanup(srv.Close)
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
	f.set(func() { f.tip = "b" })

	post := func(body, sig, event string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/hooks/github", strings.NewReader(body))
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		req.Header.Set("X-GitHub-Event", event)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"ref":"refs/heads/main"}`
	for _, tc := range []struct {
		name, sig string
	}{{"missing", ""}, {"wrong secret", testenv.WebhookSignature([]byte("other"), []byte(body))}, {"garbage", "sha256=zz"}, {"sha1", "sha1=abc"}} {
		if code := post(body, tc.sig, "push"); code != http.StatusUnauthorized {
			t.Fatalf("%s signature: %d, want 401", tc.name, code)
		}
	}
	if code := post(`{"ref":"refs/heads/other"}`, testenv.WebhookSignature(secret, []byte(`{"ref":"refs/heads/other"}`)), "push"); code != http.StatusOK {
		t.Fatalf("push to another branch: %d, want 200 (ignored)", code)
	}
	if f.count("apply b") != 0 {
		t.Fatalf("a refused webhook triggered a deploy")
	}
	if code := post(body, testenv.WebhookSignature(secret, []byte(body)), "push"); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d, want 202", code)
	}
	eventually(t, "b applied after the webhook", func() bool { return a.Status().AppliedCommit == "b" })
	if v := a.cfg.Metrics.WebhookRequests.WithLabelValues("unauthorized").Value(); v != 4 {
		t.Fatalf("unauthorized webhooks = %v", v)
	}

	// The other endpoints.
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ok", "/metrics": "reconciler_deployments_total{env=\"test\",result=\"succeeded\"} 2"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("GET %s = %d, lacks %q:\n%s", path, resp.StatusCode, want, b)
		}
	}
	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Env != "test" || st.DesiredCommit != "b" || st.AppliedCommit != "b" || len(st.Services) != 1 {
		t.Fatalf("/status = %+v", st)
	}
}

// TestRequireCI: a commit whose checks are running is not synced and not
// recorded until they pass; one whose checks failed is refused once and
// never synced.
func TestRequireCI(t *testing.T) {
	t.Parallel()
	f := &fake{tip: "a"}
	var mu sync.Mutex
	ci := map[string]error{"a": Transient(errors.New("required checks have not finished: test (in_progress)")), "b": errors.New("required checks did not pass: test (failure)")}
	asked := map[string]int{}
	a := start(t, f, func(c *Config) {
		c.RequireCI = func(_ context.Context, rev Revision) error {
			mu.Lock()
			defer mu.Unlock()
			asked[rev.Hash]++
			return ci[rev.Hash]
		}
	})
	eventually(t, "a asked again while pending", func() bool { mu.Lock(); defer mu.Unlock(); return asked["a"] >= 3 })
	if s := a.Status(); f.count("apply a") != 0 || s.Ready || !strings.Contains(s.LastError, "have not finished") || f.results() != "" {
		t.Fatalf("while pending: calls %v status %+v history %q", f.calls, s, f.results())
	}
	mu.Lock()
	delete(ci, "a") // the checks passed
	mu.Unlock()
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })

	f.set(func() { f.tip = "b" })
	eventually(t, "b refused", func() bool { return a.Status().FailedCommit == "b" })
	if f.count("apply b") != 0 || !strings.HasSuffix(f.results(), "poll:b:refused") {
		t.Fatalf("calls %v history %s", f.calls, f.results())
	}
}
