package main

import (
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestApplyForwardOnly: with --forward-only (what the deploy workflow's ssh
// and ssm modes pass unless its rollback input is set) apply refuses a
// commit older than the live one, as a re-run of an old workflow run would
// deploy, and changes nothing; forward commits deploy; without the flag an
// explicit rollback still works.
func TestApplyForwardOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	t.Cleanup(func() { testenv.RemoveEnvContainers(t, w.cli, w.env) })
	v1 := w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply", "--forward-only")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	w.mustRun(exitOK, "apply", "--forward-only")
	w.wantServing("v2")
	ids := w.containers()

	r := w.mustRun(exitFailed, "apply", "--forward-only", "--ref", v1)
	if !strings.Contains(r.stderr, "not a descendant of the live commit") || !strings.Contains(r.stderr, "does not contain") {
		t.Fatalf("old commit with --forward-only:\n%s", r.stderr)
	}
	w.wantServing("v2")
	if got := w.containers(); len(got) != len(ids) {
		t.Fatalf("a refused apply changed containers: %v → %v", ids, got)
	}
	for k, v := range ids {
		if w.containers()[k] != v {
			t.Fatalf("a refused apply changed containers: %v → %v", ids, w.containers())
		}
	}

	w.mustRun(exitOK, "apply", "--ref", v1)
	w.wantServing("v1")
}
