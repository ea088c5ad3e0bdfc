package state

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// ServiceDependency is one resolved entry of a service's dependsOn.
type ServiceDependency struct {
	// Service is the name of the service depended on.
	Service string
	// Condition is ConditionHealthy or ConditionStarted.
	Condition string
}

// dependsOnType is the Go type of Service.DependsOn, which the schema walk
// also accepts as a list of names.
var dependsOnType = reflect.TypeOf(map[string]Dependency(nil))

// composeConditions are Compose's spellings of the conditions, accepted
// and recorded as ours.
var composeConditions = map[string]string{
	"service_healthy": ConditionHealthy,
	"service_started": ConditionStarted,
}

// dependsOnList walks Compose's short form of dependsOn, a list of service
// names, into the JSON-ready form of the long one: each name maps to a
// Dependency with the default condition. Each name is indexed at
// path.NAME (the line of its item), as the long form's keys are.
func (w *walker) dependsOnList(n *yaml.Node, path string) (any, bool) {
	out := map[string]any{}
	for i, item := range n.Content {
		child := fmt.Sprintf("%s[%d]", path, i)
		w.doc.index[child] = pos{val: item}
		item = resolveAlias(item)
		if !w.spend(1, child) {
			return nil, false
		}
		if item == nil || item.Kind != yaml.ScalarNode || isNull(item) || item.Value == "" {
			w.doc.bad[child] = true
			line, got := n.Line, "nothing"
			if item != nil {
				line, got = item.Line, nodeKind(item)
			}
			w.errf(line, child, "want a service name of this file, got %s", got)
			continue
		}
		named := join(path, item.Value)
		if _, dup := out[item.Value]; dup {
			w.errf(item.Line, child, "%s is listed twice; list each service once", quote(item.Value))
			continue
		}
		w.doc.index[named] = pos{val: item}
		out[item.Value] = map[string]any{}
	}
	return out, true
}

// nodeKind names what n is, for an error.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (the long form is dependsOn: {web: {condition: healthy}}, not a list of mappings)"
	case yaml.SequenceNode:
		return "a list"
	}
	return "nothing"
}

// defaultDependsOn fills each entry's condition: healthy when absent,
// Compose's spellings as ours.
func defaultDependsOn(deps map[string]Dependency) {
	for name, d := range deps {
		if d.Condition == "" {
			d.Condition = ConditionHealthy
		}
		if c, ok := composeConditions[d.Condition]; ok {
			d.Condition = c
		}
		deps[name] = d
	}
}

// resolveDependsOn is deps sorted by name; nil for none.
func resolveDependsOn(deps map[string]Dependency) []ServiceDependency {
	var out []ServiceDependency
	for _, name := range SortedKeys(deps) {
		out = append(out, ServiceDependency{Service: name, Condition: deps[name].Condition})
	}
	return out
}

// checkDependsOn checks every service's dependsOn: each entry names
// another service of the file, with a known condition, and the entries
// form no cycle (each cycle is reported once, naming it).
func (c *checker) checkDependsOn(services map[string]Service) {
	names := SortedKeys(services)
	// edges are the entries that passed, by service: the graph cycles
	// are looked for in.
	edges := map[string][]string{}
	for _, name := range names {
		sp := "services." + name + ".dependsOn"
		if !c.ok(sp) {
			continue
		}
		deps := services[name].DependsOn
		for _, dep := range SortedKeys(deps) {
			p := sp + "." + dep
			if !c.ok(p) {
				continue
			}
			switch _, known := services[dep]; {
			case dep == name:
				c.errf(p, "a service cannot depend on itself; remove %s from its dependsOn", quote(dep))
				continue
			case !known:
				c.errf(p, "unknown service %s; want one of the services of this file: %s", quote(dep), strings.Join(slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == name }), ", "))
				continue
			}
			switch cond := deps[dep].Condition; cond {
			case ConditionHealthy, ConditionStarted:
			case "service_completed_successfully":
				c.errf(p+".condition", "%s is not supported: services here run for good; a job that must finish first belongs in migrations. Want healthy (the default) or started", quote(cond))
			default:
				c.errf(p+".condition", "want healthy (the default) or started (Compose's service_healthy, service_started), got %s", quote(cond))
			}
			edges[name] = append(edges[name], dep)
		}
	}
	for _, cycle := range dependencyCycles(names, edges) {
		// Reported at the entry that leaves the cycle's first service
		// (by name), so each cycle is one error at one line.
		where := make([]string, 0, len(cycle)-1)
		for i := 0; i+1 < len(cycle); i++ {
			p := "services." + cycle[i] + ".dependsOn." + cycle[i+1]
			where = append(where, fmt.Sprintf("%s (line %d)", p, c.doc.line(p)))
		}
		c.errf("services."+cycle[0]+".dependsOn."+cycle[1], "dependency cycle %s: nothing could start first; remove one of these entries: %s",
			strings.Join(cycle, " → "), strings.Join(where, ", "))
	}
}

// dependencyCycles returns each elementary cycle that a depth-first walk
// of edges meets, once, as a path from its first service (by name) back
// to it: [a b c a]. Services and edges are walked in name order, so the
// result is stable.
func dependencyCycles(names []string, edges map[string][]string) [][]string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[string]int{}
	var path []string
	var cycles [][]string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		mark[n] = onPath
		path = append(path, n)
		for _, m := range edges[n] {
			switch mark[m] {
			case unseen:
				visit(m)
			case onPath:
				i := slices.Index(path, m)
				cycle := slices.Clone(path[i:])
				// Start at the smallest name, so one cycle has one form.
				k := slices.Index(cycle, slices.Min(cycle))
				cycle = append(cycle[k:], cycle[:k]...)
				cycle = append(cycle, cycle[0])
				if key := strings.Join(cycle, " "); !seen[key] {
					seen[key] = true
					cycles = append(cycles, cycle)
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
	}
	for _, n := range names {
		if mark[n] == unseen {
			visit(n)
		}
	}
	return cycles
}
