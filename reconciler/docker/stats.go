package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/developer-mesh/reconciler/state"
)

// Resources reads what env's service containers use: one list, then per
// container one inspect and one one-shot stats call (stream=false,
// one-shot=true: the engine answers at once instead of sampling for a
// second). Sorted by name. A container removed meanwhile is left out.
func (r *Runtime) Resources(ctx context.Context, env string) ([]state.Resources, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", state.LabelEnv+"="+env))})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []state.Resources
	var errs []error
	for _, c := range list {
		if c.Labels[state.LabelRole] == roleMigrations {
			continue
		}
		res, err := r.resources(ctx, c.ID)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errors.Join(errs...)
}

func (r *Runtime) resources(ctx context.Context, id string) (state.Resources, error) {
	ci, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return state.Resources{}, err
	}
	c := r.toContainer(ci)
	res := state.Resources{Name: c.Name, Service: c.Service, Color: c.Color, RestartCount: c.RestartCount, MemoryLimitBytes: c.Memory}
	if ci.State != nil {
		res.Running = ci.State.Running && !ci.State.Restarting
		res.Healthy = res.Running && (ci.State.Health == nil || ci.State.Health.Status != "unhealthy")
	}
	if !res.Running {
		return res, nil // a stopped container has no stats worth reading
	}
	sr, err := r.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return res, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	defer sr.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(sr.Body).Decode(&s); err != nil {
		return res, fmt.Errorf("stats of %s: %w", c.Name, err)
	}
	res.CPUSeconds = float64(s.CPUStats.CPUUsage.TotalUsage) / 1e9
	used := int64(s.MemoryStats.Usage)
	// What docker stats subtracts: inactive page cache (cgroup v2, v1).
	if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && int64(v) < used {
		used -= int64(v)
	} else if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && int64(v) < used {
		used -= int64(v)
	}
	res.MemoryBytes = used
	if s.MemoryStats.Limit > 0 {
		res.MemoryLimitBytes = int64(s.MemoryStats.Limit)
	}
	return res, nil
}
