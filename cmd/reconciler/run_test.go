package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/developer-mesh/reconciler/state"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/history"
)

// runningAgent is `reconciler run` in this process, stopped when the test ends.
type runningAgent struct {
	t      *testing.T
	addr   string
	stderr *testenv.SyncBuffer
	cancel context.CancelFunc
	done   chan int
}

// startAgent runs the agent for the world's env against repoURL.
func (w *world) startAgent(repoURL string, args ...string) *runningAgent {
	w.t.Helper()
	a := &runningAgent{t: w.t, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(w.t)), stderr: &testenv.SyncBuffer{}, done: make(chan int, 1)}
	full := append([]string{"run", "--env", w.env, "--repo", repoURL, "--state-dir", w.stateDir, "--listen", a.addr}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- run(ctx, full, io.Discard, a.stderr) }()
	w.t.Cleanup(func() {
		a.stop()
		if w.t.Failed() {
			w.t.Logf("agent log:\n%s", a.stderr.String())
		}
	})
	waitFor(w.t, "the agent's /healthz", 10*time.Second, func() bool {
		select {
		case code := <-a.done:
			a.done <- code
			w.t.Fatalf("agent exited %d at start:\n%s", code, a.stderr.String())
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

// stop cancels the agent (as SIGTERM does) and waits for it to return.
func (a *runningAgent) stop() int {
	a.cancel()
	select {
	case code := <-a.done:
		a.done <- code
		return code
	case <-time.After(60 * time.Second):
		a.t.Fatalf("agent did not stop within 60s")
		return -1
	}
}

// metric returns the value of one series of /metrics at addr (0 when absent).
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

func agentStatus(t *testing.T, addr string) agent.Status {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer resp.Body.Close()
	var s agent.Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("/status: %v", err)
	}
	return s
}

// serving reports whether nginx serves version (no failure on other answers).
func (w *world) serving(version string) bool {
	code, body := w.get("/")
	return code == 200 && strings.Contains(body, "version="+version+" ")
}

// history reads the env's history with `reconciler history -o json`.
func (w *world) history() []history.Record {
	w.t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"history", "--env", w.env, "--state-dir", w.stateDir, "-o", "json"}, &out, &errb); code != 0 {
		w.t.Fatalf("reconciler history: exit %d: %s", code, errb.String())
	}
	var recs []history.Record
	if err := json.Unmarshal(out.Bytes(), &recs); err != nil {
		w.t.Fatalf("history json: %v\n%s", err, out.String())
	}
	return recs
}

func results(recs []history.Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Trigger+":"+state.ShortHash(r.Commit)+":"+r.Result)
	}
	return strings.Join(s, " ")
}

// TestAgentPollAndHeal: over a file:// bare repo, the agent deploys the
// first commit and a pushed one within the interval plus health time; a
// container removed by hand comes back within the heal interval; metrics
// and the history (read while the agent runs) follow.
func TestAgentPollAndHeal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v1 := w.commit(spec{version: "v1", config: "a: 1\n"}, "deploy v1")
	bare := w.repo.Bare()
	a := w.startAgent("file://"+bare, "--interval", "1s", "--heal-interval", "1s")
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })

	v2 := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "deploy v2")
	pushed := time.Now()
	w.repo.Push()
	waitFor(t, "v2 served", 20*time.Second, func() bool { return w.serving("v2") })
	t.Logf("push to served: %s (interval 1s)", time.Since(pushed).Round(time.Millisecond))
	waitFor(t, "v2 recorded applied", 10*time.Second, func() bool { return agentStatus(t, a.addr).AppliedCommit == v2 })
	// Like apply, the agent backs up before each deploy with changes.
	backups, _ := filepath.Glob(filepath.Join(w.stateDir, "backups", w.env, "*-"+v2[:12]+"*"))
	if len(backups) != 1 {
		t.Fatalf("backups of v2 = %v, want one (state dir %s)", backups, w.stateDir)
	}

	env := fmt.Sprintf("env=%q", w.env)
	if got := metric(t, a.addr, `reconciler_deployments_total{`+env+`,result="succeeded"}`); got != 2 {
		t.Fatalf("deployments succeeded = %v, want 2", got)
	}
	if got := metric(t, a.addr, `reconciler_applied_commit_info{commit="`+v2+`",`+env+`}`); got != 1 {
		t.Fatalf("applied_commit_info for v2 = %v", got)
	}
	if got := metric(t, a.addr, `reconciler_applied_commit_info{commit="`+v1+`",`+env+`}`); got != 0 {
		t.Fatalf("applied_commit_info for v1 still %v", got)
	}
	if got := metric(t, a.addr, `reconciler_git_fetch_duration_seconds_count{`+env+`}`); got < 2 {
		t.Fatalf("git fetch count = %v", got)
	}
	if got := metric(t, a.addr, `reconciler_deployment_duration_seconds_count{`+env+`}`); got != 2 {
		t.Fatalf("deployment duration count = %v", got)
	}

	// Drift: the live container removed by hand comes back.
	var web string
	for n := range w.containers() {
		if strings.Contains(n, "-web-") && w.state(n) == "running" { // not the kept previous release
			web = n
		}
	}
	if err := w.cli.ContainerRemove(context.Background(), web, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	// The planner may bring it back in either color.
	waitFor(t, "a web container back", 20*time.Second, func() bool {
		for n := range w.containers() {
			if strings.Contains(n, "-web-") {
				return w.serving("v2")
			}
		}
		return false
	})
	t.Logf("removed by hand to served again: %s (heal interval 1s)", time.Since(removed).Round(time.Millisecond))
	waitFor(t, "the repair counted", 10*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_drift_repairs_total{`+env+`}`) >= 1
	})
	if !strings.Contains(a.stderr.String(), "repaired drift") {
		t.Fatalf("repair not logged:\n%s", a.stderr.String())
	}

	// The history, read while the agent runs.
	recs := w.history()
	if len(recs) < 3 || recs[0].Commit != v1 || recs[0].Result != history.Succeeded || recs[0].Trigger != agent.TriggerStart ||
		recs[1].Commit != v2 || recs[1].Result != history.Succeeded || recs[1].Message != "deploy v2" || recs[1].Author != "Test <test@example.com>" ||
		len(recs[1].Steps) == 0 || recs[2].Trigger != agent.TriggerHeal || recs[2].Result != history.Succeeded {
		t.Fatalf("history = %s\n%+v", results(recs), recs)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"history", "--env", w.env, "--state-dir", w.stateDir}, &out, io.Discard); code != 0 || !strings.Contains(out.String(), "deploy v2") {
		t.Fatalf("history text: exit %d\n%s", code, out.String())
	}
	s := agentStatus(t, a.addr)
	// One live web container; the previous release, when kept, is listed
	// stopped and not live.
	var live []string
	for _, c := range s.Services {
		if c.Live {
			live = append(live, c.Container+" "+c.State)
		} else if c.State == "running" {
			t.Errorf("/status lists %s running and not live", c.Container)
		}
	}
	if s.Env != w.env || s.DesiredCommit != v2 || !s.Ready || len(live) != 1 || !strings.HasSuffix(live[0], " running") {
		t.Fatalf("/status = %+v; live %v, want one running", s, live)
	}
	if code := a.stop(); code != 0 {
		t.Fatalf("agent exit %d after stop", code)
	}
}

// TestAgentWebhook: over a token-protected git HTTP server on loopback, a
// signed webhook deploys at once; an unsigned one gets 401 and triggers
// nothing.
func TestAgentWebhook(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "deploy v1")
	bare := w.repo.Bare()
	const token, secret = "git-token-123", "hook-secret-456"
	srv := testenv.StartGitServer(t, filepath.Dir(bare), token)
	dir := t.TempDir()
	tokenFile, secretFile := filepath.Join(dir, "token"), filepath.Join(dir, "secret")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)

	a := w.startAgent(srv.URL+"/"+filepath.Base(bare), "--interval", "1h", "--heal-interval", "0",
		"--git-token-file", tokenFile, "--webhook-secret-file", secretFile)
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })
	env := fmt.Sprintf("env=%q", w.env)
	fetches := `reconciler_git_fetch_duration_seconds_count{` + env + `}`
	if n := metric(t, a.addr, fetches); n != 1 {
		t.Fatalf("fetches at start = %v", n)
	}

	v2 := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "deploy v2")
	w.repo.Push()
	body := []byte(`{"ref":"refs/heads/main","after":"` + v2 + `"}`)
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", "http://"+a.addr+"/hooks/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d, want 401", code)
	}
	if code := post(testenv.WebhookSignature([]byte("wrong"), body)); code != http.StatusUnauthorized {
		t.Fatalf("badly signed webhook: %d, want 401", code)
	}
	sent := time.Now()
	if code := post(testenv.WebhookSignature([]byte(secret), body)); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d, want 202", code)
	}
	waitFor(t, "v2 served after the webhook", 20*time.Second, func() bool { return w.serving("v2") })
	t.Logf("webhook to served: %s (health checks: 2 × 100ms)", time.Since(sent).Round(time.Millisecond))
	// Exactly one fetch more: the refused requests triggered nothing.
	if n := metric(t, a.addr, fetches); n != 2 {
		t.Fatalf("fetches = %v, want 2 (start and the signed webhook)", n)
	}
	if n := metric(t, a.addr, `reconciler_webhook_requests_total{result="unauthorized"}`); n != 2 {
		t.Fatalf("unauthorized webhooks = %v", n)
	}
	for _, s := range []string{token, secret} {
		if strings.Contains(a.stderr.String(), s) {
			t.Fatalf("a secret reached the log:\n%s", a.stderr.String())
		}
	}
}

// TestAgentSSH: over an ssh:// remote (an in-process ssh server on
// loopback), the agent authenticates with --ssh-key-file, checks the host
// key against --known-hosts, and deploys the first commit and a pushed one.
func TestAgentSSH(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "deploy v1")
	bare := w.repo.Bare()
	url, keyFile, knownHosts := testenv.StartSSHGit(t, bare)
	w.startAgent(url, "--interval", "200ms", "--heal-interval", "0",
		"--ssh-key-file", keyFile, "--known-hosts", knownHosts)
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })

	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "deploy v2")
	w.repo.Push()
	waitFor(t, "v2 served", 20*time.Second, func() bool { return w.serving("v2") })
}

// TestAgentFailedCommitThenFix: a commit that fails its health check is
// rolled back, recorded once and not retried; the next commit deploys.
func TestAgentFailedCommitThenFix(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	bare := w.repo.Bare()
	a := w.startAgent("file://"+bare, "--interval", "200ms", "--heal-interval", "1s")
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })

	bad := w.commit(spec{version: "v2", config: "a: 1\n", webEnv: "      HEALTH: fail\n"}, "v2 broken")
	w.repo.Push()
	env := fmt.Sprintf("env=%q", w.env)
	waitFor(t, "the broken commit to fail", 30*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_deployments_total{`+env+`,result="failed"}`) == 1
	})
	if n := metric(t, a.addr, `reconciler_rollbacks_total{`+env+`}`); n != 1 {
		t.Fatalf("rollbacks = %v", n)
	}
	if !w.serving("v1") {
		t.Fatalf("v1 not served after the failed deploy")
	}
	// Many polls later it is still one attempt, and /readyz says why.
	before := metric(t, a.addr, `reconciler_git_fetch_duration_seconds_count{`+env+`}`)
	waitFor(t, "more polls", 20*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_git_fetch_duration_seconds_count{`+env+`}`) >= before+5
	})
	resp, err := http.Get("http://" + a.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(rb), state.ShortHash(bad)) {
		t.Fatalf("/readyz after a failed commit = %d %s", resp.StatusCode, rb)
	}
	if n := metric(t, a.addr, `reconciler_deployments_total{`+env+`,result="failed"}`); n != 1 {
		t.Fatalf("failed commit retried: %v failed attempts", n)
	}

	fix := w.commit(spec{image: "reconciler-test/app:v2", version: "v3", config: "a: 1\n"}, "v3 fix")
	w.repo.Push()
	waitFor(t, "the fix served", 30*time.Second, func() bool { return w.serving("v3") })
	waitFor(t, "ready again", 10*time.Second, func() bool { s := agentStatus(t, a.addr); return s.Ready && s.AppliedCommit == fix })
	recs := w.history()
	var deploys []history.Record
	for _, r := range recs {
		if r.Trigger != agent.TriggerHeal {
			deploys = append(deploys, r)
		}
	}
	if len(deploys) != 3 || deploys[1].Commit != bad || deploys[1].Result != history.Failed ||
		!strings.Contains(deploys[1].Error, "not healthy") || deploys[2].Commit != fix || deploys[2].Result != history.Succeeded {
		t.Fatalf("history = %s", results(recs))
	}
}

// TestAgentSignedCommits: with --verify-signatures only commits signed by
// a trusted key deploy; an unsigned or untrusted one is refused with the
// reason, logged, counted, and nothing changes. A signed tip over an
// unsigned commit is refused too: every commit between the applied one
// and the tip is verified.
func TestAgentSignedCommits(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	trusted, other := testenv.NewSigningKey(t, "release"), testenv.NewSigningKey(t, "mallory")
	keys := filepath.Join(t.TempDir(), "trusted.asc")
	os.WriteFile(keys, []byte(trusted.Public), 0o644)

	w.repo.Write("envs/"+w.env+".yaml", w.envYAML(spec{version: "v1", config: "a: 1\n"}))
	v1 := w.repo.CommitSigned("v1 signed", trusted)
	bare := w.repo.Bare()
	a := w.startAgent("file://"+bare, "--interval", "200ms", "--heal-interval", "0", "--verify-signatures", "--trusted-keys", keys)
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })
	ids := w.containers()
	env := fmt.Sprintf("env=%q", w.env)

	refused := func(n int, name, reason string) {
		t.Helper()
		waitFor(t, name+" refused", 20*time.Second, func() bool {
			return metric(t, a.addr, `reconciler_signature_refusals_total{`+env+`}`) == float64(n)
		})
		recs := w.history()
		last := recs[len(recs)-1]
		if last.Result != history.Refused || !strings.Contains(last.Error, reason) {
			t.Fatalf("%s: last history record %+v", name, last)
		}
		if !strings.Contains(a.stderr.String(), "commit refused") {
			t.Fatalf("refusal not logged")
		}
		if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || !w.serving("v1") {
			t.Fatalf("%s commit changed the host: %v → %v", name, ids, got)
		}
	}
	for i, c := range []struct{ name, reason string }{{"unsigned", "not signed"}, {"untrusted", "not from a trusted key"}} {
		w.repo.Git("reset", "-q", "--hard", v1) // each on the applied commit
		w.repo.Write("envs/"+w.env+".yaml", w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2-" + c.name, config: "a: 1\n"}))
		if c.name == "unsigned" {
			w.repo.Commit("v2 unsigned")
		} else {
			w.repo.CommitSigned("v2 untrusted", other)
		}
		w.repo.Push()
		refused(i+1, c.name, c.reason)
	}
	// A signed tip over an unsigned commit.
	w.repo.Git("reset", "-q", "--hard", v1)
	w.repo.Write("envs/"+w.env+".yaml", w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2-under", config: "a: 1\n"}))
	under := w.repo.Commit("v2 unsigned, under a signed tip")
	w.repo.Write("envs/"+w.env+".yaml", w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2-over", config: "a: 1\n"}))
	w.repo.CommitSigned("v2 signed over an unsigned commit", trusted)
	w.repo.Push()
	refused(3, "signed over unsigned", "commit "+state.ShortHash(under)+" under the tip")

	w.repo.Git("reset", "-q", "--hard", v1)
	w.repo.Write("envs/"+w.env+".yaml", w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}))
	w.repo.CommitSigned("v2 signed", trusted)
	w.repo.Push()
	waitFor(t, "signed v2 served", 20*time.Second, func() bool { return w.serving("v2") })
}

// TestAgentRefusesRewrite: a force-push back to an older commit is refused
// (history, /status, the log), never deployed however often the agent
// polls, and the host keeps serving the applied version; restarted with
// --allow-rewrite the agent deploys that tip.
func TestAgentRefusesRewrite(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v1 := w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	bare := w.repo.Bare()
	a := w.startAgent("file://"+bare, "--interval", "200ms", "--heal-interval", "0")
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })
	v2 := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	w.repo.Push()
	waitFor(t, "v2 served", 30*time.Second, func() bool { return w.serving("v2") && agentStatus(t, a.addr).AppliedCommit == v2 })
	ids := w.containers()

	w.repo.Git("reset", "-q", "--hard", v1)
	w.repo.Push() // force: the replayed older commit
	waitFor(t, "v1 refused", 20*time.Second, func() bool { return agentStatus(t, a.addr).FailedCommit == v1 })
	env := fmt.Sprintf("env=%q", w.env)
	fetches := metric(t, a.addr, `reconciler_git_fetch_duration_seconds_count{`+env+`}`)
	waitFor(t, "more polls", 20*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_git_fetch_duration_seconds_count{`+env+`}`) >= fetches+5
	})
	st := agentStatus(t, a.addr)
	if st.Ready || st.AppliedCommit != v2 || st.DesiredCommit != v1 || !strings.Contains(st.LastError, "not a descendant of the applied commit") ||
		!strings.Contains(st.LastError, "--allow-rewrite") {
		t.Fatalf("status after the force-push: %+v", st)
	}
	var refusals []history.Record
	for _, r := range w.history() {
		if r.Commit == v1 && r.Result == history.Refused {
			refusals = append(refusals, r)
		}
	}
	if len(refusals) != 1 || !strings.Contains(refusals[0].Error, state.ShortHash(v2)) {
		t.Fatalf("refusals of the replayed commit = %+v, want one naming the applied %s; history %s", refusals, state.ShortHash(v2), results(w.history()))
	}
	if !strings.Contains(a.stderr.String(), "commit refused: the branch was rewritten") {
		t.Fatalf("refusal not logged")
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || !w.serving("v2") {
		t.Fatalf("the replayed commit changed the host: %v → %v", ids, got)
	}

	// The operator allows it: the agent deploys the tip.
	if code := a.stop(); code != 0 {
		t.Fatalf("agent exited %d", code)
	}
	w.startAgent("file://"+bare, "--interval", "200ms", "--heal-interval", "0", "--allow-rewrite")
	waitFor(t, "v1 served with --allow-rewrite", 30*time.Second, func() bool { return w.serving("v1") })
}

// TestAgentSIGTERMAndKill9: the agent binary gets SIGTERM while a new
// color waits for its health checks: it removes the new color, leaves
// traffic on the live one and exits 0; a restart converges with no orphan
// containers; the history survives a kill -9.
func TestAgentSIGTERMAndKill9(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bin := filepath.Join(t.TempDir(), "reconciler")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	logs := t.TempDir()
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	bare := w.repo.Bare()
	start := func(n int) (*exec.Cmd, string, chan error) {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cmd := exec.Command(bin, "run", "--env", w.env, "--repo", "file://"+bare, "--state-dir", w.stateDir,
			"--listen", addr, "--interval", "300ms", "--heal-interval", "1s", "--log-format", "json")
		f, err := os.Create(filepath.Join(logs, fmt.Sprintf("agent-%d.log", n)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); f.Close() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			exited <- nil
			if t.Failed() {
				b, _ := os.ReadFile(f.Name())
				t.Logf("agent %d log:\n%s", n, b)
			}
		})
		return cmd, addr, exited
	}

	cmd, addr, exited := start(1)
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })

	// v2 becomes healthy slowly: two checks 3s apart.
	slow := strings.Replace(w.envYAML(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}), "interval: 100ms", "interval: 3s", 1)
	w.repo.Write("envs/"+w.env+".yaml", slow)
	v2 := w.repo.Commit("v2 slow")
	w.repo.Push()
	green := w.env + "-web-green"
	waitFor(t, "the new color to start", 20*time.Second, func() bool {
		c, err := w.cli.ContainerInspect(context.Background(), green)
		return err == nil && c.State.Running
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("agent after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("agent did not exit within 40s of SIGTERM")
	}
	if _, ok := w.containers()[green]; ok {
		t.Fatalf("the new color %s outlived the stopped agent", green)
	}
	if !w.serving("v1") {
		t.Fatalf("v1 not served after SIGTERM")
	}
	recs := w.history()
	if last := recs[len(recs)-1]; last.Commit != v2 || last.Result != history.Interrupted {
		t.Fatalf("history after SIGTERM = %s", results(recs))
	}

	// Restart: converges to v2; no orphans.
	cmd, addr, exited = start(2)
	waitFor(t, "v2 served after restart", 30*time.Second, func() bool { return w.serving("v2") })
	waitFor(t, "v2 applied", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return agentStatus(t, addr).AppliedCommit == v2
	})
	w.mustRun(exitOK, "diff")
	running := 0
	for n := range w.containers() {
		if w.state(n) == "running" {
			running++
		}
	}
	if got := w.containers(); running != 1 || len(got) > 2 {
		t.Fatalf("containers after restart = %v (%d running), want the live web and at most its stopped previous release", got, running)
	}
	before := results(w.history())

	// kill -9: every record written so far is still there and readable.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	exited <- nil
	recs = w.history()
	if got := results(recs); got != before || recs[len(recs)-1].Result != history.Succeeded {
		t.Fatalf("history after kill -9 = %s, want %s", got, before)
	}
	// A new agent starts after the kill (the flock died with the process)
	// and knows v2 is applied.
	_, addr3, _ := start(3)
	waitFor(t, "the third agent ready", 20*time.Second, func() bool {
		resp, err := http.Get("http://" + addr3 + "/readyz")
		if err != nil {
			return false // not listening yet
		}
		resp.Body.Close()
		return resp.StatusCode == 200 && agentStatus(t, addr3).AppliedCommit == v2
	})
}

// TestAgentAvailabilityAndCrashLoop: the agent counts the requests and
// errors nginx sent to a new color while its bake watched it, and reports a
// container that keeps crashing outside a deploy, by metric and
// notification.
func TestAgentAvailabilityAndCrashLoop(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rcv := newReceiver(t)
	notify := fmt.Sprintf("notify:\n  - url: %s/hook\n    events: [container.crash_looping]\n", rcv.srv.URL)
	bake := "    deploy:\n      bake: 2s\n"
	crash := "      CRASH_FILE: /app/crash\n"
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true, workerEnv: crash, webExtra: bake, top: notify}, "v1")
	bare := w.repo.Bare()
	a := w.startAgent("file://"+bare, "--interval", "1s", "--heal-interval", "1s")
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })

	l := startLoad(t, w.port, 4)
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", worker: true, workerEnv: crash, webExtra: bake, top: notify}, "v2")
	w.repo.Push()
	env := fmt.Sprintf("env=%q", w.env)
	waitFor(t, "the bake's requests counted", 30*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_deploy_requests_total{`+env+`}`) > 0
	})
	l.end()
	if got := metric(t, a.addr, `reconciler_deploy_request_errors_total{`+env+`}`); got != 0 {
		t.Fatalf("deploy errors = %v, want 0", got)
	}

	w.touch(w.env+"-worker-blue", "crash")
	waitFor(t, "the crash loop reported", 30*time.Second, func() bool {
		return metric(t, a.addr, `reconciler_crash_looping_containers{`+env+`}`) == 1
	})
	waitFor(t, "container.crash_looping notified", 10*time.Second, func() bool {
		_, ok := rcv.event("container.crash_looping")
		return ok
	})
	if e, _ := rcv.event("container.crash_looping"); len(e.Services) != 1 || e.Services[0].Name != "worker" {
		t.Fatalf("crash-loop event = %+v", e)
	}
	if code := a.stop(); code != 0 {
		t.Fatalf("agent exit %d", code)
	}
}
