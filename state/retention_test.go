package state

import (
	"slices"
	"testing"
)

func TestImageHistoryPrunable(t *testing.T) {
	h := ImageHistory{}
	for _, id := range []string{"a1", "a2", "a3", "a4", "a2"} { // a2 ran again: most recent
		h.Record("api", ImageUse{ID: id, Ref: "api:" + id})
	}
	h.Record("worker", ImageUse{ID: "a1", Ref: "api:a1"}) // shared, and recent for worker
	h.Record("worker", ImageUse{ID: "w1", Ref: "w:1"})
	h.Record("worker", ImageUse{ID: "w2", Ref: "w:2"})
	h.Record("worker", ImageUse{ID: "w3", Ref: "w:3"})

	var ids []string
	for _, u := range h["api"] {
		ids = append(ids, u.ID)
	}
	if want := []string{"a2", "a4", "a3", "a1"}; !slices.Equal(ids, want) {
		t.Fatalf("api history %v, want %v", ids, want)
	}
	got := func(keep int, inUse map[string]bool) []string {
		var out []string
		for _, u := range h.Prunable(keep, inUse) {
			out = append(out, u.ID)
		}
		return out
	}
	// keep 2: api keeps a2, a4; worker keeps w3, w2. a3 and w1 go; a1 is
	// beyond both lists' first two too.
	if g, want := got(2, nil), []string{"a1", "a3", "w1"}; !slices.Equal(g, want) {
		t.Fatalf("prunable(2) = %v, want %v", g, want)
	}
	// An image a container uses (ours or not) stays.
	if g, want := got(2, map[string]bool{"a3": true}), []string{"a1", "w1"}; !slices.Equal(g, want) {
		t.Fatalf("prunable(2, a3 in use) = %v, want %v", g, want)
	}
	if g := got(4, nil); len(g) != 0 {
		t.Fatalf("prunable(4) = %v, want none", g)
	}
	h.Forget("a1")
	if slices.ContainsFunc(h["worker"], func(u ImageUse) bool { return u.ID == "a1" }) || len(h["api"]) != 3 {
		t.Fatalf("forget a1: %v", h)
	}
}
