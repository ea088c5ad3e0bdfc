package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler/history"
)

// graph is the branch's history for Config.Ancestry: each commit's parent.
type graph struct {
	mu      sync.Mutex
	parent  map[string]string
	asked   int
	refused []string // "applied→tip: reason", one per Refused call
}

func (g *graph) ancestry(_ context.Context, applied, tip string) ([]Revision, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked++
	var out []Revision
	for c := tip; c != applied; c = g.parent[c] {
		if c == "" {
			return nil, fmt.Errorf("tip %s: %w", tip, ErrNotDescendant)
		}
		out = append([]Revision{{Hash: c}}, out...)
	}
	return out, nil
}

func (g *graph) notify(_ context.Context, applied, rev Revision, reason error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refused = append(g.refused, applied.Hash+"→"+rev.Hash+": "+reason.Error())
}

func (g *graph) refusals() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.refused...)
}

// line is the history a ← b ← c ← d, and x, a rewritten commit on a.
func line() *graph {
	return &graph{parent: map[string]string{"b": "a", "c": "b", "d": "c", "x": "a"}}
}

// polls waits for n more fetches of f.
func polls(t *testing.T, f *fake, n int) {
	t.Helper()
	f.mu.Lock()
	before := f.fetches
	f.mu.Unlock()
	eventually(t, "more polls", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fetches > before+n })
}

// TestDescendantDeploys: a tip that descends from the applied commit is
// deployed; a first deploy has nothing to check.
func TestDescendantDeploys(t *testing.T) {
	t.Parallel()
	g, f := line(), &fake{tip: "a"}
	a := start(t, f, func(c *Config) { c.Ancestry, c.Refused = g.ancestry, g.notify })
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
	g.mu.Lock()
	asked := g.asked
	g.mu.Unlock()
	if asked != 0 {
		t.Fatalf("first deploy asked Ancestry %d times", asked)
	}
	f.set(func() { f.tip = "c" })
	eventually(t, "c applied", func() bool { return a.Status().AppliedCommit == "c" && a.Status().Ready })
	if got, want := f.results(), "start:a:succeeded poll:c:succeeded"; got != want || len(g.refusals()) != 0 {
		t.Fatalf("history = %s, want %s; refusals %v", got, want, g.refusals())
	}
}

// TestRewriteRefused: a force-push back to an older commit, and a
// rewritten branch, are refused: recorded once as refused, shown in
// /status, announced once, never synced however often the agent polls;
// a tip that descends from the applied commit again is deployed.
func TestRewriteRefused(t *testing.T) {
	t.Parallel()
	g, f := line(), &fake{tip: "a"}
	a := start(t, f, func(c *Config) { c.Ancestry, c.Refused = g.ancestry, g.notify })
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
	f.set(func() { f.tip = "b" })
	eventually(t, "b applied", func() bool { return a.Status().AppliedCommit == "b" })

	for _, tip := range []string{"a", "x"} { // replayed older commit; rewritten branch
		f.set(func() { f.tip = tip })
		eventually(t, tip+" refused", func() bool { return a.Status().FailedCommit == tip })
		polls(t, f, 20)
		s := a.Status()
		if s.Ready || s.AppliedCommit != "b" || !strings.Contains(s.LastError, ErrNotDescendant.Error()) || !strings.Contains(s.LastError, "--allow-rewrite") {
			t.Fatalf("status with tip %s = %+v", tip, s)
		}
	}
	if n := f.count("apply a"); n != 1 {
		t.Fatalf("older commit a synced %d times, want once (its first deploy)", n)
	}
	if n := f.count("apply x"); n != 0 {
		t.Fatalf("rewritten commit x synced %d times", n)
	}
	if got, want := f.results(), "start:a:succeeded poll:b:succeeded poll:a:refused poll:x:refused"; got != want {
		t.Fatalf("history = %s, want %s", got, want)
	}
	if r := g.refusals(); len(r) != 2 || !strings.HasPrefix(r[0], "b→a: ") || !strings.HasPrefix(r[1], "b→x: ") {
		t.Fatalf("deploy.refused announced %q, want once for a and once for x, with b applied", r)
	}
	f.mu.Lock()
	rec := f.records[2]
	f.mu.Unlock()
	if rec.Result != history.Refused || !strings.Contains(rec.Error, ErrNotDescendant.Error()) {
		t.Fatalf("history record %+v", rec)
	}

	// The branch descends from b again: c deploys.
	f.set(func() { f.tip = "c" })
	eventually(t, "c applied", func() bool { return a.Status().AppliedCommit == "c" && a.Status().Ready })
}

// TestAllowRewrite: with AllowRewrite a tip that does not descend from the
// applied commit deploys; restarted with it, the agent deploys the tip it
// refused before, and restarted without it, keeps refusing that tip
// without recording or announcing it again, unless an operator applied
// that tip by hand (the history names it applied).
func TestAllowRewrite(t *testing.T) {
	t.Parallel()
	g := line()
	past := []history.Record{
		{Env: "test", Commit: "b", Result: history.Succeeded, Trigger: TriggerPoll},
		{Env: "test", Commit: "x", Result: history.Refused, Trigger: TriggerPoll, Error: "commit x refused: " + ErrNotDescendant.Error()},
	}

	f := &fake{tip: "x"}
	a := start(t, f, func(c *Config) { c.Ancestry, c.Refused, c.Past = g.ancestry, g.notify, past })
	eventually(t, "x still refused", func() bool { return a.Status().FailedCommit == "x" })
	polls(t, f, 10)
	if n, r := f.count("apply x"), g.refusals(); n != 0 || len(r) != 0 || f.results() != "" {
		t.Fatalf("restart without --allow-rewrite: x synced %d times, announced %q, recorded %q", n, r, f.results())
	}

	// An operator applied x by hand (reconciler apply records it), then
	// restarted the agent: x is the applied commit, nothing is refused.
	f = &fake{tip: "x"}
	manual := append(append([]history.Record(nil), past...), history.Record{Env: "test", Commit: "x", Result: history.Succeeded, Trigger: history.TriggerApply})
	a = start(t, f, func(c *Config) { c.Ancestry, c.Refused, c.Past = g.ancestry, g.notify, manual })
	eventually(t, "x adopted", func() bool { s := a.Status(); return s.AppliedCommit == "x" && s.Ready && s.FailedCommit == "" })
	f.mu.Lock()
	modes := fmt.Sprint(f.modes)
	deployed := slices.Contains(f.modes, Deploy)
	f.mu.Unlock()
	if r := g.refusals(); deployed || len(r) != 0 || f.results() != "" {
		t.Fatalf("after a manual apply of x: sync modes %s (only the start's heal wanted), announced %q, recorded %q", modes, r, f.results())
	}

	f = &fake{tip: "x"}
	a = start(t, f, func(c *Config) { c.Ancestry, c.Refused, c.Past, c.AllowRewrite = g.ancestry, g.notify, past, true })
	eventually(t, "x applied", func() bool { return a.Status().AppliedCommit == "x" && a.Status().Ready })
	// And a force-push back to older a while it runs with the flag.
	f.set(func() { f.tip = "a" })
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
	if got, want := f.results(), "start:x:succeeded poll:a:succeeded"; got != want || len(g.refusals()) != 0 {
		t.Fatalf("history = %s, want %s; refusals %v", got, want, g.refusals())
	}
}

// TestSignaturesOnEveryCommitBetween: with Verify, every commit after the
// applied one up to the tip is verified; a signed tip over an unsigned
// commit is refused and nothing is synced.
func TestSignaturesOnEveryCommitBetween(t *testing.T) {
	t.Parallel()
	g, f := line(), &fake{tip: "a"}
	var mu sync.Mutex
	var verified []string
	a := start(t, f, func(c *Config) {
		c.Ancestry, c.Refused = g.ancestry, g.notify
		c.Verify = func(_ context.Context, rev Revision) error {
			mu.Lock()
			defer mu.Unlock()
			verified = append(verified, rev.Hash)
			if rev.Hash == "b" {
				return errors.New("b: commit is not signed")
			}
			return nil
		}
	})
	eventually(t, "a applied", func() bool { return a.Status().AppliedCommit == "a" })
	f.set(func() { f.tip = "c" })
	eventually(t, "c refused", func() bool { return a.Status().FailedCommit == "c" })
	polls(t, f, 10)
	mu.Lock()
	got := strings.Join(verified, " ")
	mu.Unlock()
	if got != "a b" {
		t.Fatalf("verified %q, want the first tip a, then b (c is not asked once b is refused)", got)
	}
	if n := f.count("apply c"); n != 0 {
		t.Fatalf("signed tip c over unsigned b synced %d times", n)
	}
	if s := a.Status(); s.AppliedCommit != "a" || !strings.Contains(s.LastError, "commit b under the tip") {
		t.Fatalf("status = %+v", s)
	}
	if got, want := f.results(), "start:a:succeeded poll:c:refused"; got != want {
		t.Fatalf("history = %s, want %s", got, want)
	}
	if r := g.refusals(); len(r) != 1 || !strings.Contains(r[0], "not signed") {
		t.Fatalf("deploy.refused announced %q", r)
	}
	// A signed d on top still holds the unsigned b between a and itself.
	f.set(func() { f.tip = "d" })
	eventually(t, "d refused", func() bool { return a.Status().FailedCommit == "d" })
	if n := f.count("apply d"); n != 0 {
		t.Fatalf("d over unsigned b synced %d times", n)
	}
}
