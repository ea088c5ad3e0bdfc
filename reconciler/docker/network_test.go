package docker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

// TestStartRefusesAnotherEnvsNetwork: an env whose network is another
// env's (by its reconciler.env label) is refused before its container
// exists, naming the owner (name proxies go through the same check).
func TestStartRefusesAnotherEnvsNetwork(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()
	other := env + "-net-owner"
	if _, err := cli.NetworkCreate(ctx, other, network.CreateOptions{Driver: "bridge", Internal: true,
		Labels: map[string]string{state.LabelEnv: other}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.NetworkRemove(context.Background(), other) })

	c := serviceSpec(env, "web", state.Blue, testenv.FreePort(t), state.Spec{Image: appRef, ContainerPort: 8080})
	c.EnvNetwork, c.Aliases = other, []string{"web-blue"}
	err := rt.Start(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "network "+other+" belongs to env "+other) {
		t.Fatalf("start on another env's network: %v; want a refusal naming the owner", err)
	}
	if _, err := cli.ContainerInspect(ctx, c.Name); err == nil {
		t.Fatalf("container %s was created", c.Name)
	}
}
