package workflows

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s not installed: %v", tool, err)
		}
	}
}

func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot(t), "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeployRefGate runs scripts/deploy-ref.sh, the approval gate of
// deployment.yml, in a clone of a real repository: main P ← A ← B, a side
// branch X off P. It shows that the deploy refs the staging and prod agents
// follow move only to commits of main, prod only to what staging already
// has, and never backwards without rollback.
func TestDeployRefGate(t *testing.T) {
	needTools(t, "bash", "git")
	gate := script(t, "deploy-ref.sh")
	repo := testenv.NewRepo(t)
	p := repo.Commit("P")
	a := repo.Commit("A")
	b := repo.Commit("B")
	bare := repo.Bare()
	repo.Git("checkout", "-q", "-b", "side", p)
	x := repo.Commit("X")
	repo.Git("push", "-q", "origin", "side")
	runner := t.TempDir()
	if out, err := exec.Command("git", "clone", "-q", bare, runner).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	refAt := func(ref string) string {
		out, _ := exec.Command("git", "-C", bare, "rev-parse", "-q", "--verify", "refs/heads/"+ref).Output()
		return strings.TrimSpace(string(out))
	}

	steps := []struct {
		name, cmd, env, commit string
		rollback               bool
		wantOK                 bool
		wantOut, wantErr       string
		staging, prod          string // deploy/staging and deploy/prod afterwards
	}{
		{name: "dev follows main", cmd: "check", env: "dev", commit: a, wantOK: true, wantOut: "main", wantErr: "no deploy ref"},
		{name: "dev refuses a side commit", cmd: "check", env: "dev", commit: x, wantErr: "not on main"},
		{name: "prod before staging", cmd: "move", env: "prod", commit: a, wantErr: "deploy it to staging first"},
		{name: "staging takes a side commit? no", cmd: "move", env: "staging", commit: x, wantErr: "not on main"},
		{name: "staging check changes nothing", cmd: "check", env: "staging", commit: a, wantOK: true, wantOut: "deploy/staging"},
		{name: "staging moves to A", cmd: "move", env: "staging", commit: a, wantOK: true, wantOut: "deploy/staging", wantErr: "moved from absent", staging: a},
		{name: "prod refuses B, not on staging", cmd: "move", env: "prod", commit: b, wantErr: "deploy it to staging first", staging: a},
		{name: "prod moves to A", cmd: "move", env: "prod", commit: a, wantOK: true, wantOut: "deploy/prod", staging: a, prod: a},
		{name: "prod again is a no-op", cmd: "move", env: "prod", commit: a, wantOK: true, wantErr: "already at", staging: a, prod: a},
		{name: "staging moves on to B", cmd: "move", env: "staging", commit: b, wantOK: true, staging: b, prod: a},
		{name: "prod follows to B", cmd: "move", env: "prod", commit: b, wantOK: true, staging: b, prod: b},
		{name: "prod back to P refused", cmd: "move", env: "prod", commit: p, wantErr: "would go back", staging: b, prod: b},
		{name: "prod back to P with rollback", cmd: "move", env: "prod", commit: p, rollback: true, wantOK: true, wantErr: "rollback", staging: b, prod: p},
		{name: "an unknown env", cmd: "check", env: "qa", commit: a, wantErr: "no deploy ref rule", staging: b, prod: p},
		{name: "not a commit id", cmd: "check", env: "prod", commit: "main", wantErr: "40 hex", staging: b, prod: p},
	}
	for _, s := range steps {
		cmd := exec.Command("bash", gate, s.cmd)
		cmd.Dir = runner
		cmd.Env = append(os.Environ(), "ENV_NAME="+s.env, "COMMIT="+s.commit, "SOURCE=main",
			fmt.Sprintf("ROLLBACK=%v", s.rollback))
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if (err == nil) != s.wantOK || !strings.Contains(stdout.String(), s.wantOut) || !strings.Contains(stderr.String(), s.wantErr) {
			t.Fatalf("%s: exit %v (want success %v)\nstdout: %s\nstderr: %s\nwant %q on stdout and %q on stderr",
				s.name, err, s.wantOK, stdout.String(), stderr.String(), s.wantOut, s.wantErr)
		}
		if got := refAt("deploy/staging"); got != s.staging {
			t.Fatalf("%s: deploy/staging is %q, want %q", s.name, got, s.staging)
		}
		if got := refAt("deploy/prod"); got != s.prod {
			t.Fatalf("%s: deploy/prod is %q, want %q", s.name, got, s.prod)
		}
	}
}

// fakeChecks is a loopback server speaking the two GitHub REST endpoints
// scripts/checks-green.sh reads: check runs and the combined status of a
// commit.
type fakeChecks struct {
	mu       sync.Mutex
	token    string
	runs     []map[string]any
	statuses []map[string]any
	requests int
	fail     int // answer every request with this HTTP status when non-zero
	after    func(requests int)
}

func (f *fakeChecks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	if f.fail != 0 {
		http.Error(w, `{"message":"Not Found"}`, f.fail)
		return
	}
	f.requests++
	switch {
	case strings.HasSuffix(r.URL.Path, "/check-runs"):
		page := r.URL.Query().Get("page")
		var runs []map[string]any
		if len(f.runs) > 100 { // two pages
			if page == "1" {
				runs = f.runs[:100]
			} else {
				runs = f.runs[100:]
			}
		} else {
			runs = f.runs
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"total_count": len(f.runs), "check_runs": runs})
	case strings.HasSuffix(r.URL.Path, "/status"):
		_ = json.NewEncoder(w).Encode(map[string]any{"statuses": f.statuses})
		if f.after != nil {
			f.after(f.requests)
		}
	default:
		http.NotFound(w, r)
	}
}

func run(id int, name, status, conclusion string) map[string]any {
	return map[string]any{"id": id, "name": name, "status": status, "conclusion": conclusion}
}

// TestChecksGreen runs scripts/checks-green.sh, deployment.yml's "verify CI
// has passed", against a loopback server that speaks GitHub's check-runs
// and commit-status API.
func TestChecksGreen(t *testing.T) {
	needTools(t, "bash", "curl", "jq")
	gate := script(t, "checks-green.sh")
	const sha = "0123456789abcdef0123456789abcdef01234567"
	const token = "gh-token-1"
	many := []map[string]any{}
	for i := range 100 {
		many = append(many, run(1000+i, fmt.Sprintf("matrix-%d", i), "completed", "success"))
	}

	tests := []struct {
		name     string
		required string
		fake     *fakeChecks
		timeout  string
		wantOK   bool
		wantMsg  string
		fast     bool
	}{
		{name: "all green", required: "lint, test,validate", fake: &fakeChecks{runs: []map[string]any{
			run(1, "lint", "completed", "success"), run(2, "test", "completed", "success"), run(3, "validate", "completed", "skipped")}},
			wantOK: true, wantMsg: "passed", fast: true},
		{name: "one failed", required: "lint,test", fake: &fakeChecks{runs: []map[string]any{
			run(1, "lint", "completed", "success"), run(2, "test", "in_progress", ""), run(3, "test", "completed", "failure")}},
			wantMsg: "did not pass: test (failure)", fast: true},
		{name: "the newest run wins", required: "test", fake: &fakeChecks{runs: []map[string]any{
			run(9, "test", "completed", "success"), run(2, "test", "completed", "failure")}},
			wantOK: true, wantMsg: "passed", fast: true},
		{name: "a commit status", required: "lint,preview", fake: &fakeChecks{runs: []map[string]any{
			run(1, "lint", "completed", "success")}, statuses: []map[string]any{{"context": "preview", "state": "success"}}},
			wantOK: true, wantMsg: "passed", fast: true},
		{name: "a failed status", required: "preview", fake: &fakeChecks{statuses: []map[string]any{{"context": "preview", "state": "error"}}},
			wantMsg: "preview (error)", fast: true},
		{name: "not reported", required: "lint,test", fake: &fakeChecks{runs: []map[string]any{
			run(1, "lint", "completed", "success")}}, timeout: "1", wantMsg: "timed out after 1s: required checks have not finished: test (not reported)"},
		{name: "on the second page", required: "test", fake: &fakeChecks{runs: append(append([]map[string]any{}, many...),
			run(5000, "test", "completed", "success"))}, wantOK: true, wantMsg: "passed", fast: true},
		{name: "API error", required: "test", fake: &fakeChecks{fail: http.StatusNotFound}, wantMsg: "HTTP 404", fast: true},
		{name: "nothing required", required: " , ", fake: &fakeChecks{}, wantMsg: "no check names", fast: true},
	}
	// Still running, then green: the script waits for it.
	running := &fakeChecks{runs: []map[string]any{run(1, "test", "queued", "")}}
	running.after = func(n int) {
		if n >= 4 {
			running.runs = []map[string]any{run(1, "test", "completed", "success")}
		}
	}
	tests = append(tests, struct {
		name     string
		required string
		fake     *fakeChecks
		timeout  string
		wantOK   bool
		wantMsg  string
		fast     bool
	}{name: "running, then green", required: "test", fake: running, wantOK: true, wantMsg: "passed", fast: true})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fake.token = token
			srv := httptest.NewServer(tc.fake)
			t.Cleanup(srv.Close)
			timeout := tc.timeout
			if timeout == "" {
				timeout = "30"
			}
			cmd := exec.Command("bash", gate)
			cmd.Env = append(os.Environ(), "API="+srv.URL, "REPO=developer-mesh/reconciler", "COMMIT="+sha,
				"REQUIRED="+tc.required, "GH_TOKEN="+token, "TIMEOUT="+timeout, "POLL=0.1")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if (err == nil) != tc.wantOK || !strings.Contains(string(out), tc.wantMsg) {
				t.Fatalf("exit %v (want success %v), output:\n%s\nwant %q in it", err, tc.wantOK, out, tc.wantMsg)
			}
			if strings.Contains(string(out), token) {
				t.Fatalf("the token is in the output:\n%s", out)
			}
			if tc.fast && time.Since(start) > 10*time.Second {
				t.Fatalf("took %s: want an answer at once", time.Since(start))
			}
		})
	}
}

// TestDeployRefPushToken: the approved job pushes deploy/prod with its own
// token over HTTP, though actions/checkout left the job's read-only token in
// the clone's config; without the token the push is refused and the ref
// stays where it was.
func TestDeployRefPushToken(t *testing.T) {
	needTools(t, "bash", "git", "base64")
	gate := script(t, "deploy-ref.sh")
	repo := testenv.NewRepo(t)
	a := repo.Commit("A")
	bare := repo.Bare()
	repo.Git("push", "-q", "origin", a+":refs/heads/deploy/staging")
	if out, err := exec.Command("git", "-C", bare, "config", "http.receivepack", "true").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	const token = "deploy-ref-token-1"
	srv := testenv.StartGitServer(t, filepath.Dir(bare), token)
	url := srv.URL + "/" + filepath.Base(bare)
	runner := t.TempDir()
	basic := func(tok string) string {
		out, err := exec.Command("bash", "-c", `printf 'x-access-token:%s' "$1" | base64 -w0`, "-", tok).Output()
		if err != nil {
			t.Fatal(err)
		}
		return "AUTHORIZATION: basic " + string(out)
	}
	if out, err := exec.Command("git", "-c", "http.extraheader="+basic(token), "clone", "-q", url, runner).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	// What actions/checkout persists: a header with another token.
	if out, err := exec.Command("git", "-C", runner, "config", "http."+srv.URL+"/.extraheader", basic("read-only-job-token")).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	move := func(tok string) (string, error) {
		cmd := exec.Command("bash", gate, "move")
		cmd.Dir = runner
		cmd.Env = append(os.Environ(), "ENV_NAME=prod", "COMMIT="+a, "PUSH_TOKEN="+tok)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := move(""); err == nil {
		t.Fatalf("moved without the push token:\n%s", out)
	}
	if out, _ := exec.Command("git", "-C", bare, "rev-parse", "-q", "--verify", "refs/heads/deploy/prod").Output(); len(out) != 0 {
		t.Fatalf("deploy/prod exists after a refused push: %s", out)
	}
	out, err := move(token)
	if err != nil {
		t.Fatalf("move with the token: %v\n%s", err, out)
	}
	if strings.Contains(out, token) {
		t.Fatalf("the token is in the output:\n%s", out)
	}
	got, _ := exec.Command("git", "-C", bare, "rev-parse", "refs/heads/deploy/prod").Output()
	if strings.TrimSpace(string(got)) != a {
		t.Fatalf("deploy/prod is %q, want %s", got, a)
	}
}
