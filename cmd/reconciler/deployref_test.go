package main

import (
	"fmt"
	"testing"
	"time"
)

// TestAgentFollowsDeployRef: an agent following a per-env deploy ref
// (--ref deploy/ENV), which only an approved workflow job moves, never
// deploys a commit merged to main until the ref points at it.
func TestAgentFollowsDeployRef(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ref := "deploy/" + w.env
	v1 := w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	bare := w.repo.Bare()
	w.repo.Git("push", "-q", "origin", v1+":refs/heads/"+ref) // approved: v1
	a := w.startAgent("file://"+bare, "--ref", ref, "--interval", "200ms", "--heal-interval", "0")
	waitFor(t, "v1 served", 30*time.Second, func() bool { return w.serving("v1") })
	before := w.containers()

	// Merged to main, not approved.
	v2 := w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	w.repo.Push()
	fetches := fmt.Sprintf("reconciler_git_fetch_duration_seconds_count{env=%q}", w.env)
	seen := metric(t, a.addr, fetches)
	waitFor(t, "five more fetches after the merge", 30*time.Second, func() bool { return metric(t, a.addr, fetches) >= seen+5 })
	w.wantServing("v1")
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("an unapproved commit changed the host: %v → %v", before, got)
	}
	for _, r := range w.history() {
		if r.Commit == v2 {
			t.Fatalf("the agent attempted the unapproved commit: %+v", r)
		}
	}

	// Approved: the job moves the ref.
	w.repo.Git("push", "-q", "origin", v2+":refs/heads/"+ref)
	waitFor(t, "v2 served once approved", 30*time.Second, func() bool { return w.serving("v2") })
}
