package preflight

import (
	"fmt"
	"strings"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// flatten is reconciler.Flatten: Peak counts the steps that run
// together as if one ran after the other, which starts nothing earlier
// than they do and removes nothing later.
func flatten(steps []reconciler.Step) []reconciler.Step { return reconciler.Flatten(steps) }

// released is how many services the plan's atomic releases replace
// together; 0 when it has none.
func released(p *reconciler.Plan) int {
	n := 0
	for _, c := range p.Changes {
		if c.Kind == reconciler.Release {
			n += len(c.Services)
		}
	}
	return n
}

// perService is p with each atomic release's steps put in the
// per-service order: each service's start, then the removal or drain of
// its old color, one service after the other. It is what the memory
// peak of release: per-service is counted on; p is not changed.
func perService(p *reconciler.Plan) *reconciler.Plan {
	q := *p
	q.Changes = nil
	for _, c := range p.Changes {
		if c.Kind != reconciler.Release {
			q.Changes = append(q.Changes, c)
			continue
		}
		var order []string
		bySvc := map[string][]reconciler.Step{}
		for _, s := range flatten(c.Steps) {
			svc, _, _ := strings.Cut(s.Target, "/")
			if _, ok := bySvc[svc]; !ok {
				order = append(order, svc)
			}
			bySvc[svc] = append(bySvc[svc], s)
		}
		for _, svc := range order {
			q.Changes = append(q.Changes, reconciler.Change{Kind: reconciler.Replace, Subject: svc, Steps: bySvc[svc]})
		}
	}
	return &q
}

// atomicAdvice is what the memory check adds when an atomic release does
// not fit: the peak of the same deploy in the per-service order, and
// whether that fits in avail.
func atomicAdvice(p *reconciler.Plan, running map[string]int64, services int, avail int64) string {
	peak, _, _ := Peak(perService(p), running)
	verdict := "which fits"
	if peak > avail {
		verdict = "which does not fit either"
	}
	return fmt.Sprintf("; release: %s runs the old and the new color of all %d changed services at once; "+
		"release: %s (one service after the other) would need up to %s, %s: set release: %s in the env file, or lower the services' memory",
		state.ReleaseAtomic, services, state.ReleasePerService, Size(peak), verdict, state.ReleasePerService)
}
