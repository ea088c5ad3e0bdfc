package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// TestRollbackCommand: after a completed release, the previous one is
// kept stopped; rollback starts it, checks it and takes the traffic back
// under keep-alive load with no failed request, verified through nginx;
// the release is kept stopped in turn, the rollback is in the history,
// the env is paused for the rolled-back commit, the matching git revert
// is printed, and resume lifts the pause; prune lists the kept release
// and --previous removes it. With nothing kept, rollback refuses and
// changes nothing.
func TestRollbackCommand(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply", "--skip-checks")
	r := w.mustRun(exitFailed, "rollback")
	if !strings.Contains(r.stderr, "nothing to roll back") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("rollback with nothing kept:\n%s", r.stderr)
	}
	w.wantServing("v1")

	bad := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	w.mustRun(exitOK, "apply", "--skip-checks")
	w.wantServing("v2")
	if st := w.state(w.env + "-web-blue"); st != "exited" {
		t.Fatalf("v1 after the release is %q, want exited (kept)", st)
	}

	// A bad --branch is refused before anything changes.
	if r := w.run("rollback", "--branch", "no..good"); r.code == exitOK || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("rollback --branch no..good: exit %d\n%s", r.code, r.stderr)
	}
	w.wantServing("v2")

	l := startLoad(t, w.port, 8)
	waitFor(t, "load to start", 5*time.Second, func() bool { return l.ok.Load() > 50 })
	start := time.Now()
	branch := "revert/" + w.env
	r = w.mustRun(exitOK, "rollback", "--branch", branch, "--author", "Ops <ops@example.com>")
	took := time.Since(start)
	n := l.ok.Load()
	waitFor(t, "load after the rollback", 5*time.Second, func() bool { return l.ok.Load() > n+50 })
	wantNoFailures(t, l)
	t.Logf("rollback took %s:\n%s", took, r.stdout)
	w.wantServing("v1")
	for _, want := range []string{"web: roll back green → blue", "resume web/blue, wait-healthy web/blue, switch web → blue",
		"rolled back " + w.env, "committed the revert of " + bad[:12] + " on branch " + branch, "reconciler resume --env " + w.env} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("rollback output lacks %q:\n%s", want, r.stdout)
		}
	}
	if st := w.state(w.env + "-web-green"); st != "exited" {
		t.Errorf("the rolled-back release is %q, want exited (kept)", st)
	}
	// The branch holds the revert: the env file as it was before the release.
	rev, err := gitrepo.Open(context.Background(), w.repo.Dir, branch)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := gitrepo.Open(context.Background(), w.repo.Dir, bad+"~1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := fs.ReadFile(rev.FS, "envs/"+w.env+".yaml")
	want, _ := fs.ReadFile(prev.FS, "envs/"+w.env+".yaml")
	if len(want) == 0 || string(got) != string(want) {
		t.Errorf("env file on %s:\n%s\nwant the one before the release:\n%s", branch, got, want)
	}
	if !strings.HasPrefix(rev.Message, "Revert ") {
		t.Errorf("revert commit message %q", rev.Message)
	}

	dir, err := statedir.Open(w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := dir.Paused(w.env); err != nil || !p.Holds(bad) {
		t.Fatalf("pause after the rollback: %+v, %v; want it to hold %s", p, err, bad)
	}
	recs, _, err := history.Read(filepath.Join(w.stateDir, "history", w.env+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if last.Trigger != "rollback" || !last.RolledBack || last.Result != history.Succeeded {
		t.Fatalf("last history record %+v, want the rollback", last)
	}

	r = w.mustRun(exitOK, "resume")
	if !strings.Contains(r.stdout, "resumed "+w.env) {
		t.Fatalf("resume:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(w.stateDir, w.env+".paused")); !os.IsNotExist(err) {
		t.Fatalf("pause file after resume: %v", err)
	}

	// prune lists the kept release; --previous removes it, and then there
	// is nothing to roll back.
	green := w.env + "-web-green"
	if r := w.mustRun(exitOK, "prune", "--dry-run"); !strings.Contains(r.stdout, "kept previous release "+green) {
		t.Fatalf("prune does not list the kept release:\n%s", r.stdout)
	}
	if r := w.mustRun(exitOK, "prune", "--previous"); !strings.Contains(r.stdout, "removed previous release "+green) {
		t.Fatalf("prune --previous:\n%s", r.stdout)
	}
	if st := w.state(green); st != "" {
		t.Fatalf("%s after prune --previous is %q, want it gone", green, st)
	}
	w.wantServing("v1")
	w.mustRun(exitFailed, "rollback")
}
