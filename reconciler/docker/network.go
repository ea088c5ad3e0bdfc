package docker

import (
	"context"
	"fmt"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

// LabelNetwork marks a network reconciler created for an environment.
const LabelNetwork = "reconciler.network"

// ensureNetwork creates the environment's network when it does not exist:
// a bridge network marked internal, so that it never becomes a
// container's gateway network. A container's published ports live on its
// gateway network; on the default bridge they keep working while the
// container is disconnected from and reconnected to this network to change
// its aliases. An existing network must be internal for the same reason.
func (r *Runtime) ensureNetwork(ctx context.Context, name, env string) error {
	n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err == nil {
		if owner := n.Labels[state.LabelEnv]; owner != "" && owner != env {
			// Joining it would let env's name proxies answer for the
			// other env's service names on its network.
			return fmt.Errorf("network %s belongs to env %s (its %s label), not to env %s: an env may not join another env's network; set network to a name of env %s's own",
				name, owner, state.LabelEnv, env, env)
		}
		if !n.Internal {
			return fmt.Errorf("network %s exists and is not internal: reconciler moves service names by reconnecting containers to it, "+
				"which would interrupt their published ports; remove it (reconciler creates it), or create it with docker network create --internal", name)
		}
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	r.log.Info("create network", zap.String("name", name))
	_, err = r.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge", Internal: true,
		Labels: map[string]string{state.LabelEnv: env, LabelNetwork: "true"},
	})
	if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	return nil
}

// Alias implements reconciler.Runtime. A container that does not exist (an
// old color removed by hand, say) has no name to give or take: that is not
// an error.
func (r *Runtime) Alias(ctx context.Context, name, net string, aliases []string) error {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("aliases of %s: %w", name, err)
	}
	if ci.State != nil && (ci.State.Status == "removing" || ci.State.Dead) {
		return nil // on its way out, and its names with it
	}
	want := slices.Sorted(slices.Values(aliases))
	if have, ok := networksOf(ci)[net]; ok && slices.Equal(have, want) {
		return nil
	}
	if _, ok := networksOf(ci)[net]; ok {
		if err := r.cli.NetworkDisconnect(ctx, net, ci.ID, false); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("aliases of %s: disconnect from %s: %w", name, net, err)
		}
	}
	r.log.Debug("connect", zap.String("name", name), zap.String("network", net), zap.Strings("aliases", want))
	err = r.cli.NetworkConnect(ctx, net, ci.ID, &network.EndpointSettings{Aliases: want})
	if err != nil && cerrdefs.IsNotFound(err) {
		if _, ierr := r.cli.ContainerInspect(ctx, ci.ID); cerrdefs.IsNotFound(ierr) {
			return nil // removed meanwhile
		}
	}
	if err != nil {
		return fmt.Errorf("aliases of %s: connect to %s: %w", name, net, err)
	}
	return nil
}

// networksOf returns the user-defined networks of a container with their
// aliases, sorted, leaving out the short container ID the engine adds.
func networksOf(ci container.InspectResponse) map[string][]string {
	if ci.NetworkSettings == nil || len(ci.NetworkSettings.Networks) == 0 {
		return nil
	}
	out := map[string][]string{}
	for name, ep := range ci.NetworkSettings.Networks {
		if name == "bridge" || name == "host" || name == "none" || ep == nil {
			continue
		}
		var as []string
		for _, a := range ep.Aliases {
			if len(ci.ID) >= 12 && a == ci.ID[:12] || slices.Contains(as, a) {
				continue
			}
			as = append(as, a)
		}
		slices.Sort(as)
		if as == nil {
			as = []string{}
		}
		out[name] = as
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
