package github_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler/github"
)

// fakeGitHub speaks the two endpoints Verify reads, per commit, and
// checks the token and headers of every request.
type fakeGitHub struct {
	mu       sync.Mutex
	runs     map[string][]map[string]any // sha → check runs
	statuses map[string][]map[string]any // sha → statuses
	token    string
	requests []string
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+f.token || r.Header.Get("Accept") != "application/vnd.github+json" {
		w.WriteHeader(401)
		fmt.Fprint(w, `{"message":"Bad credentials"}`)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/repos/developer-mesh/reconciler/commits/"), "/")
	if len(parts) != 2 {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"message":"Not Found"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch parts[1] {
	case "check-runs":
		runs := f.runs[parts[0]]
		if runs == nil {
			runs = []map[string]any{}
		}
		json.NewEncoder(w).Encode(map[string]any{"total_count": len(runs), "check_runs": runs})
	case "status":
		st := f.statuses[parts[0]]
		if st == nil {
			st = []map[string]any{}
		}
		json.NewEncoder(w).Encode(map[string]any{"state": "success", "statuses": st})
	default:
		w.WriteHeader(404)
	}
}

func run(id int, name, status, conclusion string) map[string]any {
	return map[string]any{"id": id, "name": name, "status": status, "conclusion": conclusion}
}

// TestVerify: against a loopback server speaking GitHub's check-runs and
// combined-status API: all required green passes (a status context counts,
// a re-run replaces a failed run), a running or missing check is pending,
// a failed one fails naming it, a bad token is an API error without the
// token in it.
func TestVerify(t *testing.T) {
	t.Parallel()
	f := &fakeGitHub{token: "ghs_s3cr3t", runs: map[string][]map[string]any{
		"green":   {run(1, "test", "completed", "failure"), run(2, "test", "completed", "success"), run(3, "lint", "completed", "skipped"), run(4, "other", "completed", "failure")},
		"running": {run(5, "test", "in_progress", ""), run(6, "lint", "completed", "success")},
		"red":     {run(7, "test", "completed", "failure"), run(8, "lint", "completed", "timed_out")},
		"partial": {run(9, "test", "completed", "success")},
	}, statuses: map[string][]map[string]any{
		"green":   {{"context": "preview", "state": "success"}},
		"running": {{"context": "preview", "state": "success"}},
		"red":     {{"context": "preview", "state": "success"}},
		"partial": {{"context": "preview", "state": "failure"}},
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := &github.Checks{API: srv.URL, Repo: "developer-mesh/reconciler", Token: "ghs_s3cr3t", Required: []string{"test", "lint", "preview"}}
	ctx := context.Background()
	if err := c.Verify(ctx, "green"); err != nil {
		t.Fatalf("green: %v", err)
	}
	for _, tc := range []struct {
		sha, want string
		is        error
	}{
		{"running", "commit running: required checks have not finished: test (in_progress)", github.ErrPending},
		{"red", "commit red: required checks did not pass: test (failure), lint (timed_out)", github.ErrFailed},
		{"partial", "commit partial: required checks did not pass: preview (failure)", github.ErrFailed},
		{"unknown", "commit unknown: required checks have not finished: test (not reported), lint (not reported), preview (not reported)", github.ErrPending},
	} {
		err := c.Verify(ctx, tc.sha)
		if err == nil || err.Error() != tc.want || !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %q", tc.sha, err, tc.want)
		}
	}
	bad := *c
	bad.Token = "ghs_wrong_t0ken"
	err := bad.Verify(ctx, "green")
	if err == nil || !errors.Is(err, github.ErrAPI) || !strings.Contains(err.Error(), "status 401: Bad credentials") || strings.Contains(err.Error(), "t0ken") {
		t.Errorf("bad token: %v", err)
	}
	if none := (&github.Checks{API: "http://127.0.0.1:1"}); none.Verify(ctx, "x") != nil {
		t.Errorf("no required checks must pass without asking")
	}
}

func TestRepoFromURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://github.com/developer-mesh/reconciler.git":    "developer-mesh/reconciler",
		"https://x-access-token:T@github.com/o/r":             "o/r",
		"git@github.com:developer-mesh/reconciler.git":        "developer-mesh/reconciler",
		"ssh://git@github.com/developer-mesh/reconciler":      "developer-mesh/reconciler",
		"https://gitlab.com/developer-mesh/reconciler.git":    "",
		"file:///srv/git/reconciler.git":                      "",
		"https://github.com/developer-mesh/reconciler/tree/x": "",
	} {
		if got := github.RepoFromURL(in); got != want {
			t.Errorf("RepoFromURL(%q) = %q, want %q", in, got, want)
		}
	}
}
