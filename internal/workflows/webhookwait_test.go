package workflows

import (
	"encoding/json"
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

// TestWebhookWait runs scripts/webhook-wait.sh, the wait of deployment.yml's
// webhook mode, against a fake agent /status and a real git history
// P ← A ← B on main (B pushed after the runner's clone) and X on a side
// branch. Before, the workflow waited for appliedCommit == the commit: a
// later merge (B) made it poll until its timeout and fail.
func TestWebhookWait(t *testing.T) {
	for _, tool := range []string{"bash", "jq", "curl", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s not installed: %v", tool, err)
		}
	}
	script, err := filepath.Abs(filepath.Join(repoRoot(t), "scripts", "webhook-wait.sh"))
	if err != nil {
		t.Fatal(err)
	}
	repo := testenv.NewRepo(t)
	p := repo.Commit("P")
	a := repo.Commit("A")
	bare := repo.Bare()
	runner := t.TempDir()
	if out, err := exec.Command("git", "clone", "-q", bare, runner).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	b := repo.Commit("B")
	repo.Push()
	repo.Git("checkout", "-q", "-b", "side", p)
	x := repo.Commit("X")
	repo.Git("push", "-q", "origin", "side")
	// The workflow runs in a checkout of the commit it deploys: the runner
	// knows X (a hotfix branch, say), not B.
	if out, err := exec.Command("git", "-C", runner, "fetch", "-q", "origin", "side").CombinedOutput(); err != nil {
		t.Fatalf("fetch side: %v\n%s", err, out)
	}

	const token = "status-token-1"
	var mu sync.Mutex
	var status map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(status)
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name                 string
		commit               string
		applied, failed, tip string
		timeout              string
		wantOK               bool
		wantMsg              string
		fast                 bool // well before the timeout
	}{
		{name: "applied is the commit", commit: a, applied: a, tip: a, timeout: "30", wantOK: true, wantMsg: "applied", fast: true},
		{name: "applied is a later commit", commit: a, applied: b, tip: b, timeout: "30", wantOK: true, wantMsg: "contains", fast: true},
		{name: "the commit failed", commit: a, applied: p, failed: a, tip: a, timeout: "30", wantMsg: "the agent failed", fast: true},
		{name: "a later tip containing it failed", commit: a, applied: p, failed: b, tip: b, timeout: "30", wantMsg: "not retried", fast: true},
		{name: "not on the branch", commit: x, applied: b, tip: b, timeout: "30", wantMsg: "will never deploy it", fast: true},
		{name: "not yet applied", commit: a, applied: p, tip: a, timeout: "2", wantMsg: "timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			status = map[string]string{"appliedCommit": tc.applied, "failedCommit": tc.failed, "desiredCommit": tc.tip}
			mu.Unlock()
			cmd := exec.Command("bash", script)
			cmd.Dir = runner
			cmd.Env = append(os.Environ(), "URL="+srv.URL, "COMMIT="+tc.commit, "BRANCH=main",
				"STATUS_TOKEN="+token, "TIMEOUT="+tc.timeout, "POLL=0.2")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			if (err == nil) != tc.wantOK || !strings.Contains(string(out), tc.wantMsg) {
				t.Fatalf("exit %v (want success %v), output:\n%s\nwant %q in it", err, tc.wantOK, out, tc.wantMsg)
			}
			if tc.fast && took > 10*time.Second {
				t.Fatalf("took %s: want an answer at once", took)
			}
		})
	}
}
