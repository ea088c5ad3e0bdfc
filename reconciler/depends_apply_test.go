package reconciler_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/state"
)

// TestApplyDependsConverges: applying each dependsOn golden plan leaves a
// host with nothing left to do.
func TestApplyDependsConverges(t *testing.T) {
	for _, gc := range reconciler.DependsCases(t) {
		t.Run(gc.Name, func(t *testing.T) { converge(t, gc.Desired, gc.Observed) })
	}
}

// TestApplyDependencyAnswersFirst: on a first deploy, a dependency's new
// color is healthy and its name proxy answers (asked with the check
// command) before the service that depends on it starts; a proxy that
// never answers fails the apply before the dependent starts.
func TestApplyDependencyAnswersFirst(t *testing.T) {
	gc := reconciler.DependsCases(t)[0] // depends-first-deploy: worker ← rest-api ← mcp-server
	if gc.Name != "depends-first-deploy" {
		t.Fatalf("case %s, want depends-first-deploy", gc.Name)
	}
	d := gc.Desired
	p, err := reconciler.Diff(d, gc.Observed, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	restProxy := state.NameProxyName(d.Env, "rest-api")
	check := "exec " + restProxy + " " + strings.Join(reconciler.NameCheckCommand(8081), " ")
	startMCP := "start " + state.ContainerName(d.Env, "mcp-server", state.Blue)

	run := func(answer func(name string, cmd []string) (int, string)) ([]string, error) {
		h := memhost.New()
		h.Seed(d, gc.Observed)
		h.ExecResult = answer
		_, err := h.Applier(memhost.NewClock(time.Unix(0, 0))).Apply(context.Background(), p)
		var calls []string
		for _, c := range h.Calls() {
			calls = append(calls, c.String())
		}
		return calls, err
	}

	calls, err := run(nil)
	if err != nil {
		t.Fatal(err)
	}
	i, j := slices.Index(calls, check), indexPrefix(calls, startMCP)
	if i < 0 || j < 0 || j < i {
		t.Fatalf("rest-api's name proxy (%q at %d) was not asked before mcp-server started (%d):\n%s", check, i, j, strings.Join(calls, "\n"))
	}
	if k := indexPrefix(calls, "start "+state.ContainerName(d.Env, "rest-api", state.Blue)); k < indexPrefix(calls, "start "+state.ContainerName(d.Env, "worker", state.Blue)) {
		t.Fatalf("rest-api started before worker, which it depends on:\n%s", strings.Join(calls, "\n"))
	}

	// The proxy never answers: the apply fails within ProxyStartTimeout,
	// rest-api is rolled back and mcp-server never starts.
	calls, err = run(func(name string, cmd []string) (int, string) {
		if name == restProxy {
			return 1, "name-proxy --check: connection refused"
		}
		return 0, ""
	})
	if !errors.Is(err, reconciler.ErrNotRouted) || !strings.Contains(err.Error(), "name proxy "+restProxy+" does not forward rest-api to blue after "+reconciler.ProxyStartTimeout.String()) {
		t.Fatalf("apply = %v, want the proxy named", err)
	}
	if j := indexPrefix(calls, startMCP); j >= 0 {
		t.Fatalf("mcp-server started although rest-api's name never answered:\n%s", strings.Join(calls, "\n"))
	}
}

// indexPrefix is the index of the first call starting with prefix, -1
// when none.
func indexPrefix(calls []string, prefix string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}
