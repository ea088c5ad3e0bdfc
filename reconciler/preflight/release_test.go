package preflight

import (
	"context"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler"
)

// atomicPlan is an atomic release of three 512m services, each started
// beside its old color, the old colors drained together at the end.
func atomicPlan() *reconciler.Plan {
	st := func(svc string) reconciler.Step {
		s := start("p-"+svc+"-green", 512*mib)
		s.Target = svc + "/green"
		return s
	}
	dr := func(svc string) reconciler.Step {
		s := drain("p-" + svc + "-blue")
		s.Target = svc + "/blue"
		return s
	}
	return &reconciler.Plan{Changes: []reconciler.Change{{Kind: reconciler.Release, Subject: "release",
		Services: []reconciler.EventService{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Steps: []reconciler.Step{st("a"), st("b"), st("c"),
			{Action: reconciler.ActTogether, Steps: []reconciler.Step{dr("a"), dr("b"), dr("c")}}}}}}
}

// TestMemoryAtomic: the doubled set of an atomic release is counted, and
// when it does not fit the error gives the figures of both orders.
func TestMemoryAtomic(t *testing.T) {
	running := map[string]int64{"p-a-blue": 512 * mib, "p-b-blue": 512 * mib, "p-c-blue": 512 * mib}
	if peak, now, _ := Peak(atomicPlan(), running); peak != 3072*mib || now != 1536*mib {
		t.Fatalf("atomic peak %s (now %s), want 3g (every service doubled)", Size(peak), Size(now))
	}
	if peak, _, _ := Peak(perService(atomicPlan()), running); peak != 2048*mib {
		t.Fatalf("per-service peak %s, want 2g (one service doubled at a time)", Size(peak))
	}
	for _, tc := range []struct {
		host int64
		want string
	}{
		{2560 * mib, "release: per-service (one service after the other) would need up to 2g, which fits: set release: per-service"},
		{1792 * mib, "would need up to 2g, which does not fit either"},
	} {
		c := &Checker{Engine: fakeEngine{mem: tc.host, running: running}, MemoryReserve: 256 * mib}
		err := c.Plan(context.Background(), atomicPlan()).Err()
		if err == nil || !strings.Contains(err.Error(), "needs up to 3g of memory limits at once") || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "release: atomic runs the old and the new color of all 3 changed services at once") {
			t.Errorf("host %s: %v, want the atomic figures and %q", Size(tc.host), err, tc.want)
		}
	}
}
