package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
)

// ciServer speaks GitHub's check-runs and combined-status endpoints for
// repo o/r: each commit's "test" check run has the status the test sets.
type ciServer struct {
	mu    sync.Mutex
	state map[string]string // commit → "in_progress", "success", "failure"
	asked map[string]int
}

func (c *ciServer) set(commit, st string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state[commit] = st
}

func (c *ciServer) count(commit string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.asked[commit]
}

func (c *ciServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, "/repos/o/r/commits/")
	sha, what, _ := strings.Cut(rest, "/")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case ok && what == "check-runs":
		c.asked[sha]++
		runs := []map[string]any{}
		switch st := c.state[sha]; st {
		case "in_progress":
			runs = append(runs, map[string]any{"id": 1, "name": "test", "status": "in_progress"})
		case "success", "failure":
			runs = append(runs, map[string]any{"id": 2, "name": "test", "status": "completed", "conclusion": st})
		}
		json.NewEncoder(w).Encode(map[string]any{"total_count": len(runs), "check_runs": runs})
	case ok && what == "status":
		fmt.Fprint(w, `{"state":"pending","statuses":[]}`)
	default:
		w.WriteHeader(404)
		fmt.Fprint(w, `{"message":"Not Found"}`)
	}
}

// TestAgentRequiresCI: with --require-checks, the agent deploys a commit
// only once its required check passed on GitHub (a loopback server
// speaking the REST API): while it runs nothing is deployed or recorded;
// a commit whose check failed is refused and the live version stays.
func TestAgentRequiresCI(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ci := &ciServer{state: map[string]string{}, asked: map[string]int{}}
	srv := httptest.NewServer(ci)
	t.Cleanup(srv.Close)
	v1 := w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	ci.set(v1, "in_progress")
	bare := w.repo.Bare()
	w.startAgent("file://"+bare, "--interval", "200ms", "--heal-interval", "0",
		"--require-checks", "test", "--github-repo", "o/r", "--github-api", srv.URL)
	waitFor(t, "the agent asking GitHub about v1", 20*time.Second, func() bool { return ci.count(v1) >= 2 })
	if got := w.containers(); len(got) != 0 {
		t.Fatalf("deployed while CI runs: %v", got)
	}
	ci.set(v1, "success")
	waitFor(t, "v1 served once CI passed", 30*time.Second, func() bool { return w.serving("v1") })

	v2 := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	ci.set(v2, "failure")
	w.repo.Push()
	var recs []history.Record
	waitFor(t, "v2 refused", 30*time.Second, func() bool {
		recs, _, _ = history.Read(statedir.HistoryPath(w.stateDir, w.env))
		return len(recs) > 0 && recs[len(recs)-1].Commit == v2 && recs[len(recs)-1].Result == history.Refused
	})
	if last := recs[len(recs)-1]; !strings.Contains(last.Error, "required checks did not pass: test (failure)") {
		t.Fatalf("refusal record %+v", last)
	}
	for _, r := range recs {
		if r.Commit == v1 && r.Result != history.Succeeded {
			t.Fatalf("v1 recorded as %s while waiting for CI: %+v", r.Result, recs)
		}
	}
	w.wantServing("v1")
}
