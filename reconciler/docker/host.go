package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/developer-mesh/reconciler/state"
)

// Manifest asks the registry of ref, through the engine (DistributionInspect),
// for the manifest of ref with the Docker config's credentials for that
// registry (see Pull), and returns its digest. It pulls nothing. A digest
// reference is looked up the same way. The engine talks to registries on
// 127.0.0.0/8 over plain HTTP.
func (r *Runtime) Manifest(ctx context.Context, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %s: invalid reference: %w", ref, err)
	}
	host := reference.Domain(named)
	auth, err := registryAuth(host)
	if err != nil {
		return "", fmt.Errorf("image %s: credentials for %s: %w", ref, host, err)
	}
	d, err := r.cli.DistributionInspect(ctx, reference.TagNameOnly(named).String(), auth)
	if err != nil {
		hint := "the tag or digest may not exist, or the credentials are missing or wrong"
		if auth == "" {
			hint += "; the Docker config has no credentials for " + host
		}
		if unreachable(err) {
			hint = "check that the registry " + host + " is reachable from this host"
		}
		return "", fmt.Errorf("image %s is not available from %s: %w (%s)", ref, host, err, hint)
	}
	return string(d.Descriptor.Digest), nil
}

// EngineInfo is what the pre-deploy checks need from the engine.
type EngineInfo struct {
	Version  string
	MemTotal int64  // bytes of memory the engine's host has
	RootDir  string // the engine's data root, where images and layers live
}

// Info returns the engine's version, memory and data root.
func (r *Runtime) Info(ctx context.Context) (EngineInfo, error) {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return EngineInfo{}, fmt.Errorf("docker info: %w", err)
	}
	return EngineInfo{Version: info.ServerVersion, MemTotal: info.MemTotal, RootDir: info.DockerRootDir}, nil
}

// RunningMemory returns the memory limit (bytes, 0 = none) of every running
// container of ours, of every environment, by name: what this host's
// deployments hold now.
func (r *Runtime) RunningMemory(ctx context.Context) (map[string]int64, error) {
	return r.memoryLimits(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", state.LabelEnv))})
}

// KeptMemory returns the memory limit (0 = none) of each stopped
// (exited) container of ours, of every environment, by name: the
// previous releases kept for a rollback, which it starts beside the
// running ones.
func (r *Runtime) KeptMemory(ctx context.Context) (map[string]int64, error) {
	return r.memoryLimits(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", state.LabelEnv), filters.Arg("status", "exited"))})
}

// memoryLimits returns the memory limit (0 = none) of each container the
// list options select, by name; a container gone meanwhile is left out.
func (r *Runtime) memoryLimits(ctx context.Context, opts container.ListOptions) (map[string]int64, error) {
	list, err := r.cli.ContainerList(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	out := make(map[string]int64, len(list))
	for _, c := range list {
		ci, err := r.cli.ContainerInspect(ctx, c.ID)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("inspect container %.12s: %w", c.ID, err)
		}
		var mem int64
		if ci.HostConfig != nil {
			mem = ci.HostConfig.Memory
		}
		out[summaryName(c)] = mem
	}
	return out, nil
}

// unreachable reports whether err says the registry could not be reached
// at all, rather than that it refused the image.
func unreachable(err error) bool {
	msg := err.Error()
	for _, s := range []string{"connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
