package docker_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/state"
)

// TestObserveLeanMatchesOfficial: Observe reads the list and the
// inspections with only the fields it uses (leanReader). Through a
// negotiated client (Connect: the lean list) and through one that has not
// negotiated (the official list first) it sees the same: our container,
// with the memory limit, network aliases, start time and labels the
// official inspection gives (Inspect), and a foreign container's name and
// port. A memory limit changed by hand is seen at once (the drift the
// planner reports).
func TestObserveLeanMatchesOfficial(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()

	port := testenv.FreePort(t)
	cs := serviceSpec(env, "web", state.Blue, port, state.Spec{Image: appRef, ContainerPort: 8080, Memory: 32 << 20})
	cs.EnvNetwork, cs.Aliases = env, []string{"web-blue"}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), cs.Name, container.RemoveOptions{Force: true})
		_ = cli.NetworkRemove(context.Background(), env)
	})
	if err := rt.Start(ctx, cs); err != nil {
		t.Fatalf("start: %v", err)
	}
	foreignName, foreignPort := env+"-foreign", testenv.FreePort(t)
	createRaw(t, cli, foreignName, nil, foreignPort)

	negotiated, err := docker.Connect(ctx)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer negotiated.Close()
	lean := docker.New(negotiated, nil)

	official, err := rt.Inspect(ctx, cs.Name)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if official.Memory != 32<<20 || !reflect.DeepEqual(official.Networks, map[string][]string{env: {"web-blue"}}) || official.StartedAt.IsZero() {
		t.Fatalf("official inspection %+v: want memory 32m, alias web-blue on %s, a start time", official, env)
	}
	for _, tc := range []struct {
		name string
		rt   func() *docker.Runtime
	}{
		{"negotiated (lean list)", func() *docker.Runtime { return lean }},
		// A fresh client has only pinged: its first call negotiates.
		{"not negotiated (official list)", func() *docker.Runtime { return docker.New(testenv.Docker(t), nil) }},
	} {
		name := tc.name
		snap, err := tc.rt().Observe(ctx, env, []string{appRef})
		if err != nil {
			t.Fatalf("%s: observe: %v", name, err)
		}
		if len(snap.Containers) != 1 || !reflect.DeepEqual(snap.Containers[0], official) {
			t.Errorf("%s: observed %+v\nwant (Inspect) %+v", name, snap.Containers, official)
		}
		var fr *state.Foreign
		for i := range snap.Foreign {
			if snap.Foreign[i].Name == foreignName {
				fr = &snap.Foreign[i]
			}
		}
		if fr == nil || !reflect.DeepEqual(fr.HostPorts, []int{foreignPort}) || fr.Owner != "" {
			t.Errorf("%s: foreign %s: %+v, want port %d and no owner", name, foreignName, fr, foreignPort)
		}
	}

	if _, err := cli.ContainerUpdate(ctx, cs.Name, container.UpdateConfig{Resources: container.Resources{Memory: 48 << 20, MemorySwap: 48 << 20}}); err != nil {
		t.Fatalf("update memory: %v", err)
	}
	snap, err := lean.Observe(ctx, env, nil)
	if err != nil {
		t.Fatalf("observe after update: %v", err)
	}
	if len(snap.Containers) != 1 || snap.Containers[0].Memory != 48<<20 || snap.Containers[0].Spec.Memory != 32<<20 {
		t.Errorf("after docker update: %+v, want memory 48m on the host and 32m in the spec", snap.Containers)
	}
}
