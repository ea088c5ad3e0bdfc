// Package docker implements reconciler.Runtime on a Docker engine through
// the official client (github.com/docker/docker/client). It works with
// engines from Docker 20.10 (API 1.41) on: the client negotiates the API
// version.
//
// The runtime only reads and acts; it decides nothing. Containers without
// the state.LabelEnv label are reported as foreign and never stopped or
// removed by it.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// roleMigrations is the LabelRole value of a RunJob container.
const roleMigrations = "migrations"

// cleanupTimeout bounds the removal of a container that failed half-way,
// which runs on a fresh context because the caller's may be cancelled.
const cleanupTimeout = 30 * time.Second

// Runtime is reconciler.Runtime on a Docker engine. It is safe for
// concurrent use.
type Runtime struct {
	cli *client.Client
	log *zap.Logger
}

var (
	_ reconciler.Runtime        = (*Runtime)(nil)
	_ reconciler.ProgressPuller = (*Runtime)(nil)
)

// New returns a Runtime that drives the engine behind cli. log receives
// debug lines (never environment values); nil means no logging.
func New(cli *client.Client, log *zap.Logger) *Runtime {
	if log == nil {
		log = zap.NewNop()
	}
	return &Runtime{cli: cli, log: log}
}

// Connect returns a client for the engine named by the environment
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; else the default
// socket), with the API version negotiated, after a successful ping. The
// caller closes it.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w (check DOCKER_HOST)", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ping, err := cli.Ping(ctx)
	if err != nil {
		host := cli.DaemonHost()
		cli.Close()
		return nil, fmt.Errorf("docker engine not reachable at %s: %w (is dockerd running? DOCKER_HOST?)", host, err)
	}
	// The version from this ping, so the first request does not ping
	// again to negotiate it.
	cli.NegotiateAPIVersionPing(ping)
	return cli, nil
}

// Observe implements reconciler.Runtime. It lists all containers once,
// inspects only ours of env (for restart count, start time, memory limit
// and network aliases, which the list lacks; a few at a time, reading
// only those fields, see leanReader) and each image once, concurrently.
// Migration job containers are left out of both lists; name proxies have
// their own (env's only); containers of other environments are foreign
// (never touched by this env, but their names and ports are taken).
// A container removed between the list and its inspection is left out.
func (r *Runtime) Observe(ctx context.Context, env string, images []string) (state.Snapshot, error) {
	// A client still at the library's default version may not have
	// negotiated one yet (Connect does; a client made elsewhere may not):
	// then the official client lists, which negotiates, and the reader
	// speaks the version it found from then on.
	var (
		list []container.Summary
		lean *leanReader
		err  error
	)
	if r.cli.ClientVersion() != api.DefaultVersion {
		lean = newLeanReader(r.cli)
		defer lean.close()
		list, err = lean.list(ctx)
	} else {
		list, err = r.cli.ContainerList(ctx, container.ListOptions{All: true})
	}
	if err != nil {
		return state.Snapshot{}, fmt.Errorf("list containers: %w", err)
	}
	if lean == nil {
		lean = newLeanReader(r.cli)
		defer lean.close()
	}

	var mine []string
	var foreign []state.Foreign
	var proxies []state.NameProxy
	for _, c := range list {
		env0, ok := c.Labels[state.LabelEnv]
		switch {
		case isNameProxy(c.Labels):
			// Not a service's container, and its name is outside every
			// env's.
			if pe := c.Labels[state.LabelProxyEnv]; pe == env {
				proxies = append(proxies, nameProxy(c))
			} else {
				// Another env's name proxy: its name may collide with
				// one of ours (reconciler-proxy-cc-x-y).
				foreign = append(foreign, state.Foreign{Name: summaryName(c), HostPorts: hostPorts(c.Ports),
					Owner: "env " + pe + ", service " + c.Labels[state.LabelService]})
			}
		case !ok || env0 != env:
			fr := state.Foreign{Name: summaryName(c), HostPorts: hostPorts(c.Ports)}
			if ok {
				fr.Owner = "env " + env0 + ", service " + c.Labels[state.LabelService]
			}
			foreign = append(foreign, fr)
		case c.Labels[state.LabelRole] != roleMigrations:
			mine = append(mine, c.ID)
		}
	}
	sort.Slice(foreign, func(i, j int) bool { return foreign[i].Name < foreign[j].Name })

	refs := distinct(images)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		ours    = make([]state.Container, 0, len(mine))
		imageID = make(map[string]string, len(refs))
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		lean.inspectAll(ctx, mine, func(id string, ci container.InspectResponse, err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case cerrdefs.IsNotFound(err):
				// Removed since the list: not part of the snapshot.
			case err != nil:
				errs = append(errs, fmt.Errorf("inspect container %.12s: %w", id, err))
			default:
				ours = append(ours, r.toContainer(ci))
			}
		})
	}()
	for _, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := r.cli.ImageInspect(ctx, ref)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case cerrdefs.IsNotFound(err):
				imageID[ref] = ""
			case err != nil:
				errs = append(errs, fmt.Errorf("inspect image %s: %w", ref, err))
			default:
				imageID[ref] = img.ID
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return state.Snapshot{}, fmt.Errorf("observe %s: %w", env, err)
	}
	sort.Slice(ours, func(i, j int) bool { return ours[i].Name < ours[j].Name })
	sort.Slice(proxies, func(i, j int) bool { return proxies[i].Service < proxies[j].Service })
	return state.Snapshot{Containers: ours, Foreign: foreign, ImageIDs: imageID, NameProxies: proxies}, nil
}

// Inspect implements reconciler.Runtime. It returns an error wrapping
// reconciler.ErrNotFound when no container is named name. A container
// without our labels is returned too, with the label fields empty.
func (r *Runtime) Inspect(ctx context.Context, name string) (state.Container, error) {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return state.Container{}, fmt.Errorf("inspect container %s: %w", name, reconciler.ErrNotFound)
	}
	if err != nil {
		return state.Container{}, fmt.Errorf("inspect container %s: %w", name, err)
	}
	// The engine also resolves ID prefixes; only an exact name counts.
	if strings.TrimPrefix(ci.Name, "/") != name && ci.ID != name {
		return state.Container{}, fmt.Errorf("inspect container %s: %w", name, reconciler.ErrNotFound)
	}
	return r.toContainer(ci), nil
}

// Remove implements reconciler.Runtime. The stop timeout is rounded up to
// whole seconds, the engine's unit. Volumes are kept. It refuses to remove a
// container without the state.LabelEnv label, unless it is a name proxy:
// those are never ours.
func (r *Runtime) Remove(ctx context.Context, name string, stopTimeout time.Duration) error {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	if strings.TrimPrefix(ci.Name, "/") != name {
		return nil // only an ID prefix matched: no container has this name
	}
	if ci.Config == nil || ci.Config.Labels[state.LabelEnv] == "" && !isNameProxy(ci.Config.Labels) {
		return fmt.Errorf("remove container %s: it has no %s label, so reconciler did not create it and leaves it alone", name, state.LabelEnv)
	}
	secs := int((stopTimeout + time.Second - 1) / time.Second)
	r.log.Debug("stop container", zap.String("name", name), zap.Int("timeoutSeconds", secs))
	if err := r.cli.ContainerStop(ctx, ci.ID, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	r.log.Debug("remove container", zap.String("name", name))
	err = r.cli.ContainerRemove(ctx, ci.ID, container.RemoveOptions{Force: true, RemoveVolumes: false})
	if err != nil && !cerrdefs.IsNotFound(err) && !strings.Contains(err.Error(), "already in progress") {
		return fmt.Errorf("remove container %s: %w", name, err)
	}
	return nil
}

// Stop implements reconciler.Runtime: the container is stopped and kept,
// so Resume starts it again without a pull or a create. It refuses a
// container without the state.LabelEnv label.
func (r *Runtime) Stop(ctx context.Context, name string, stopTimeout time.Duration) error {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	if strings.TrimPrefix(ci.Name, "/") != name {
		return nil
	}
	if ci.Config == nil || ci.Config.Labels[state.LabelEnv] == "" {
		return fmt.Errorf("stop container %s: it has no %s label, so reconciler did not create it and leaves it alone", name, state.LabelEnv)
	}
	secs := int((stopTimeout + time.Second - 1) / time.Second)
	r.log.Debug("stop container", zap.String("name", name), zap.Int("timeoutSeconds", secs))
	if err := r.cli.ContainerStop(ctx, ci.ID, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", name, err)
	}
	return nil
}

// Resume implements reconciler.Runtime: it starts a stopped container of
// ours as it was created.
func (r *Runtime) Resume(ctx context.Context, name string) error {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) || err == nil && strings.TrimPrefix(ci.Name, "/") != name {
		return fmt.Errorf("resume container %s: %w", name, reconciler.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("resume container %s: %w", name, err)
	}
	if ci.Config == nil || ci.Config.Labels[state.LabelEnv] == "" {
		return fmt.Errorf("resume container %s: it has no %s label, so reconciler did not create it and leaves it alone", name, state.LabelEnv)
	}
	if ci.State != nil && ci.State.Running {
		return nil
	}
	if err := r.cli.ContainerStart(ctx, ci.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("resume container %s: %w", name, err)
	}
	return nil
}

// toContainer reads one of our containers from its inspection.
func (r *Runtime) toContainer(ci container.InspectResponse) state.Container {
	c := state.Container{ID: ci.ID, Name: strings.TrimPrefix(ci.Name, "/"), ImageID: ci.Image}
	if ci.Config != nil {
		l := ci.Config.Labels
		c.Service = l[state.LabelService]
		c.Color = state.Color(l[state.LabelColor])
		c.Commit = l[state.LabelCommit]
		c.SpecHash = l[state.LabelSpecHash]
		if s := l[state.LabelSpec]; s != "" {
			if err := json.Unmarshal([]byte(s), &c.Spec); err != nil {
				// A zero Summary never matches a desired one, so the
				// planner replaces the container; nothing else to do.
				r.log.Warn("unreadable spec label", zap.String("name", c.Name), zap.Error(err))
			}
		}
		c.HostPort, _ = strconv.Atoi(l[state.LabelHostPort])
		c.DeployedAt, _ = time.Parse(time.RFC3339, l[state.LabelDeployedAt])
	}
	if ci.ContainerJSONBase != nil {
		if ci.State != nil {
			c.State = ci.State.Status
			// The engine reports "0001-01-01T00:00:00Z" for never started.
			c.StartedAt, _ = time.Parse(time.RFC3339Nano, ci.State.StartedAt)
		}
		c.RestartCount = ci.RestartCount
		if ci.HostConfig != nil {
			c.Memory = ci.HostConfig.Memory
		}
	}
	c.Networks = networksOf(ci)
	return c
}

func summaryName(c container.Summary) string {
	if len(c.Names) == 0 {
		return c.ID
	}
	// Names holds links too ("/other/alias"); the shortest is the name.
	name := c.Names[0]
	for _, n := range c.Names[1:] {
		if len(n) < len(name) {
			name = n
		}
	}
	return strings.TrimPrefix(name, "/")
}

// hostPorts returns the distinct published host ports, sorted.
func hostPorts(ports []container.Port) []int {
	var out []int
	seen := map[uint16]bool{}
	for _, p := range ports {
		if p.PublicPort == 0 || seen[p.PublicPort] {
			continue
		}
		seen[p.PublicPort] = true
		out = append(out, int(p.PublicPort))
	}
	sort.Ints(out)
	return out
}

func distinct(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	var out []string
	for _, s := range ss {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// isNameProxy reports whether labels are those of a name proxy.
func isNameProxy(labels map[string]string) bool {
	return labels[state.LabelRole] == state.RoleNameProxy && labels[state.LabelProxyEnv] != ""
}
