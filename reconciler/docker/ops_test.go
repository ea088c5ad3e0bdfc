package docker_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

// TestNetworkAliasExec: Start joins the env network (created internal)
// with its aliases; Alias changes them while the published port keeps
// answering; Exec runs a command and returns its exit code and output.
func TestNetworkAliasExec(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	// A tag of its own: it needs the app's selftest mode, which an app
	// built from another checkout under appRef may lack.
	const appRef = "reconciler-test/docker-ops-app:v1"
	testenv.AppImage(t, appRef)
	ctx := context.Background()
	port := testenv.FreePort(t)
	c := serviceSpec(env, "web", state.Blue, port, state.Spec{Image: appRef, ContainerPort: 8080})
	c.EnvNetwork, c.Aliases = env, []string{"web-blue"}
	if err := rt.Start(ctx, c); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, port)
	nw, err := cli.NetworkInspect(ctx, env, network.InspectOptions{})
	if err != nil || !nw.Internal || nw.Labels[state.LabelEnv] != env {
		t.Fatalf("network %s: %+v, %v; want internal, labelled", env, nw, err)
	}
	got, err := rt.Inspect(ctx, c.Name)
	if err != nil || !slices.Equal(got.Networks[env], []string{"web-blue"}) {
		t.Fatalf("networks %v (%v), want %s: [web-blue]", got.Networks, err, env)
	}

	// The port answers all through three alias changes.
	stop := make(chan struct{})
	failed := make(chan int, 1)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				failed <- n
				return
			default:
			}
			if code, _, err := get(port, "/health"); err != nil || code != 200 {
				n++
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for _, as := range [][]string{{"web", "web-blue"}, {"web-blue"}, {"web-blue", "web"}} {
		if err := rt.Alias(ctx, c.Name, env, as); err != nil {
			t.Fatal(err)
		}
		got, _ := rt.Inspect(ctx, c.Name)
		if want := slices.Sorted(slices.Values(as)); !slices.Equal(got.Networks[env], want) {
			t.Fatalf("after Alias(%v): %v", as, got.Networks[env])
		}
	}
	close(stop)
	if n := <-failed; n > 0 {
		t.Fatalf("%d health requests failed on the published port while aliases changed", n)
	}
	if err := rt.Alias(ctx, env+"-nope-blue", env, []string{"x"}); err != nil {
		t.Fatalf("Alias of a missing container: %v, want nil", err)
	}

	// A foreign, non-internal network of that name is refused.
	other := env + "-ext"
	if _, err := cli.NetworkCreate(ctx, other, network.CreateOptions{Driver: "bridge", Labels: map[string]string{state.LabelEnv: env}}); err != nil {
		t.Fatal(err)
	}
	c2 := serviceSpec(env, "api", state.Blue, 0, state.Spec{Image: appRef, Command: []string{"worker"}})
	c2.EnvNetwork = other
	if err := rt.Start(ctx, c2); err == nil || !strings.Contains(err.Error(), "is not internal") {
		t.Fatalf("Start on a non-internal network: %v", err)
	}

	code, out, err := rt.Exec(ctx, c.Name, []string{"/app/server", "selftest"})
	if err != nil || code != 0 || !strings.Contains(out, "selftest ok") {
		t.Fatalf("exec selftest: %d %q %v", code, out, err)
	}
	code, out, err = rt.Exec(ctx, c.Name, []string{"/app/server", "nope"})
	if err != nil || code != 2 || !strings.Contains(out, "unknown command") {
		t.Fatalf("exec nope: %d %q %v", code, out, err)
	}
	if _, _, err := rt.Exec(ctx, env+"-nope-blue", []string{"true"}); err == nil {
		t.Fatal("exec in a missing container: no error")
	}
}
