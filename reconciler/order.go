package reconciler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/developer-mesh/reconciler/state"
)

// serviceOrder returns services in the order their changes run: each
// after every service it depends on (dependsOn), and among those free to
// go, by name. Since changes run one after another and a service's change
// ends only once its new color passed health and took its traffic and
// name, a dependency's new color is up before a dependent starts. It
// fails on a dependency that is not in services or on a cycle, which
// validation refuses in an env file; a Desired built otherwise may still
// hold one.
func serviceOrder(services []state.DesiredService) ([]state.DesiredService, error) {
	byName := map[string]state.DesiredService{}
	for _, s := range services {
		byName[s.Name] = s
	}
	deps := map[string][]string{}
	for _, s := range services {
		for _, d := range s.DependsOn {
			if _, ok := byName[d.Service]; !ok {
				return nil, fmt.Errorf("service %s depends on %s, which is not a service of env", s.Name, d.Service)
			}
			deps[s.Name] = append(deps[s.Name], d.Service)
		}
	}
	names := state.SortedKeys(byName)
	order, rest := topoOrder(names, deps)
	if len(rest) > 0 {
		return nil, fmt.Errorf("dependsOn: services %s depend on each other in a cycle: none can start first", strings.Join(rest, ", "))
	}
	out := make([]state.DesiredService, len(order))
	for i, n := range order {
		out[i] = byName[n]
	}
	return out, nil
}

// topoOrder orders names so that each comes after the names deps lists
// for it (deps outside names are ignored), taking the smallest name free
// to go at each step. rest are the names left in a cycle, sorted.
func topoOrder(names []string, deps map[string][]string) (order, rest []string) {
	in := map[string]bool{}
	for _, n := range names {
		in[n] = true
	}
	placed := map[string]bool{}
	for len(order) < len(names) {
		next := ""
		for _, n := range names { // sorted: the first free name is the smallest
			if placed[n] {
				continue
			}
			free := true
			for _, d := range deps[n] {
				if in[d] && !placed[d] {
					free = false
					break
				}
			}
			if free {
				next = n
				break
			}
		}
		if next == "" {
			for _, n := range names {
				if !placed[n] {
					rest = append(rest, n)
				}
			}
			return order, rest
		}
		placed[next] = true
		order = append(order, next)
	}
	return order, nil
}

// dependsReasons are the lines that say why s's change comes where it
// does: "after web (dependsOn: healthy)".
func dependsReasons(s state.DesiredService) []string {
	var r []string
	for _, d := range s.DependsOn {
		r = append(r, fmt.Sprintf("after %s (dependsOn: %s)", d.Service, d.Condition))
	}
	return r
}

// withDependsReasons adds s's dependsReasons to the changes of s itself
// (not to those of its name proxy or nginx file alone).
func withDependsReasons(s state.DesiredService, cs []Change) []Change {
	r := dependsReasons(s)
	if len(r) == 0 {
		return cs
	}
	for i := range cs {
		if cs[i].Subject == s.Name {
			cs[i].Reasons = append(slices.Clone(cs[i].Reasons), r...)
		}
	}
	return cs
}

// removalOrder orders the services being removed in the reverse of their
// start order: a service before the services it depended on, as the
// settings the host recorded for its last apply say
// (services.X.dependsOn.Y.condition); by name otherwise. reasons holds,
// by service, why it waits ("after api (api dependsOn web)").
func removalOrder(services []string, recorded map[string]string) (order []string, reasons map[string][]string) {
	set := map[string]bool{}
	for _, s := range services {
		set[s] = true
	}
	// dependents[y] are the removed services that depended on y: y goes
	// after them.
	dependents := map[string][]string{}
	for path := range recorded {
		rest, ok := strings.CutPrefix(path, "services.")
		if !ok {
			continue
		}
		x, rest, ok := strings.Cut(rest, ".dependsOn.")
		if !ok || strings.Contains(x, ".") {
			continue
		}
		y, ok := strings.CutSuffix(rest, ".condition")
		if !ok || !set[x] || !set[y] || x == y {
			continue
		}
		dependents[y] = append(dependents[y], x)
	}
	reasons = map[string][]string{}
	for y, xs := range dependents {
		slices.Sort(xs)
		for _, x := range xs {
			reasons[y] = append(reasons[y], fmt.Sprintf("after %s (%s dependsOn %s)", x, x, y))
		}
	}
	names := slices.Sorted(slices.Values(services))
	order, rest := topoOrder(names, dependents)
	// A cycle cannot be recorded (validation refuses it); were one there,
	// its services still go, by name.
	return append(order, rest...), reasons
}
