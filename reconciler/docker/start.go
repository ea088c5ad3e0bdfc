package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// Start implements reconciler.Runtime. With c.EnvNetwork the container
// also joins that network (created internal when absent) with c.Aliases
// before it starts. The command is the image's default
// when c.Spec.Command is empty; the memory limit also caps swap, so that it
// is a real limit. Each of c.Spec.Files is written with mode 0644 (missing
// parent directories are created 0755) before the container starts. A
// container already named c.Name is an error, and is left alone.
func (r *Runtime) Start(ctx context.Context, c reconciler.ContainerSpec) error {
	if c.HostPort > 0 && c.Spec.ContainerPort == 0 {
		return fmt.Errorf("start container %s: host port %d without a container port", c.Name, c.HostPort)
	}
	cfg, host := r.configs(c, c.Labels)
	host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	if c.HostPort > 0 {
		port := nat.Port(strconv.Itoa(c.Spec.ContainerPort) + "/tcp")
		host.PortBindings = nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(c.HostPort)}}}
	}
	if c.EnvNetwork != "" {
		if err := r.ensureNetwork(ctx, c.EnvNetwork, c.Labels[state.LabelEnv]); err != nil {
			return fmt.Errorf("start container %s: %w", c.Name, err)
		}
	}
	id, err := r.create(ctx, c, cfg, host)
	if err != nil {
		return err
	}
	if c.EnvNetwork != "" {
		// Joined before the start, so the app finds the other services
		// from its first moment; its ports stay on the default bridge.
		if err := r.cli.NetworkConnect(ctx, c.EnvNetwork, id, &network.EndpointSettings{Aliases: c.Aliases}); err != nil {
			return r.undo(c.Name, id, fmt.Errorf("connect container %s to network %s: %w", c.Name, c.EnvNetwork, err))
		}
	}
	r.log.Debug("start container", zap.String("name", c.Name), zap.String("id", state.ShortHash(id)))
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return r.undo(c.Name, id, fmt.Errorf("start container %s: %w", c.Name, err))
	}
	return nil
}

// RunJob implements reconciler.Runtime. The job's container carries c.Labels
// and LabelRole=migrations, has no restart policy and no published port, and
// is removed when RunJob returns, also when ctx is cancelled (the removal
// then kills it). c.HostPort is ignored. Its stdout and stderr go to out,
// interleaved, as they come; out is not written to after RunJob returns.
// The exit code is -1 when err is not nil and the job did not exit. A
// container of the same name left by an interrupted RunJob of the same env
// (same LabelEnv, LabelRole=migrations) is removed first.
func (r *Runtime) RunJob(ctx context.Context, c reconciler.ContainerSpec, out io.Writer) (int, error) {
	labels := make(map[string]string, len(c.Labels)+1)
	for k, v := range c.Labels {
		labels[k] = v
	}
	labels[state.LabelRole] = roleMigrations
	cfg, host := r.configs(c, labels)
	cfg.ExposedPorts = nil

	if err := r.removeLeftoverJob(ctx, c.Name, labels[state.LabelEnv]); err != nil {
		return -1, err
	}
	id, err := r.create(ctx, c, cfg, host)
	if err != nil {
		return -1, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := r.cli.ContainerRemove(cctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			r.log.Warn("remove job container", zap.String("name", c.Name), zap.Error(err))
		}
	}()

	// Attach before start so that no output is missed; the stream ends when
	// the container exits.
	att, err := r.cli.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return -1, fmt.Errorf("attach to job %s: %w", c.Name, err)
	}
	var copyErr error
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, copyErr = stdcopy.StdCopy(out, out, att.Reader)
	}()
	// However RunJob returns, out is not written to after it.
	defer func() {
		att.Close()
		<-copied
	}()

	// Registered before start: "next-exit" waits for the run we are about
	// to start, where "not-running" would return at once for a container
	// that is only created.
	waitc, errc := r.cli.ContainerWait(ctx, id, container.WaitConditionNextExit)

	r.log.Debug("start job", zap.String("name", c.Name), zap.String("id", state.ShortHash(id)))
	if err := r.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return -1, fmt.Errorf("start job %s: %w", c.Name, err)
	}

	var code int
	select {
	case res := <-waitc:
		if res.Error != nil && res.Error.Message != "" {
			return -1, fmt.Errorf("wait for job %s: %s", c.Name, res.Error.Message)
		}
		code = int(res.StatusCode)
	case err := <-errc:
		return -1, fmt.Errorf("wait for job %s: %w", c.Name, err)
	}

	// The output stream closes right after the exit; bound the wait in case
	// the engine keeps the connection open.
	select {
	case <-copied:
		if copyErr != nil && !errors.Is(copyErr, io.EOF) {
			return code, fmt.Errorf("read output of job %s: %w", c.Name, copyErr)
		}
	case <-time.After(5 * time.Second):
		r.log.Warn("job output stream did not close after exit", zap.String("name", c.Name))
	case <-ctx.Done():
		return code, fmt.Errorf("read output of job %s: %w", c.Name, ctx.Err())
	}
	r.log.Debug("job exited", zap.String("name", c.Name), zap.Int("code", code))
	return code, nil
}

// removeLeftoverJob removes a job container named name that a RunJob of
// the same env left behind when its process was killed (Observe does not
// report job containers, so the planner cannot). Any other container of that
// name is left alone, and create then fails on the name.
func (r *Runtime) removeLeftoverJob(ctx context.Context, name, env string) error {
	ci, err := r.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect job container %s: %w", name, err)
	}
	if ci.Config == nil || strings.TrimPrefix(ci.Name, "/") != name ||
		ci.Config.Labels[state.LabelRole] != roleMigrations || ci.Config.Labels[state.LabelEnv] != env || env == "" {
		return nil
	}
	r.log.Warn("removing a job container left by an interrupted run", zap.String("name", name))
	if err := r.cli.ContainerRemove(ctx, ci.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove leftover job container %s: %w", name, err)
	}
	return nil
}

// Logs implements reconciler.Runtime: the last tail lines of stdout and
// stderr, interleaved; tail <= 0 means all. It returns an error wrapping
// reconciler.ErrNotFound when no container is named name.
func (r *Runtime) Logs(ctx context.Context, name string, tail int) (string, error) {
	t := "all"
	if tail > 0 {
		t = strconv.Itoa(tail)
	}
	rc, err := r.cli.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: t})
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("logs of container %s: %w", name, reconciler.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("logs of container %s: %w", name, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.String(), fmt.Errorf("logs of container %s: %w", name, err)
	}
	return buf.String(), nil
}

// configs returns the container and host configuration common to services
// and jobs.
func (r *Runtime) configs(c reconciler.ContainerSpec, labels map[string]string) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:  c.Spec.Image,
		Env:    c.Spec.EnvList(),
		Labels: labels,
	}
	if len(c.Spec.Command) > 0 {
		cfg.Cmd = c.Spec.Command
	}
	if c.Spec.ContainerPort > 0 {
		cfg.ExposedPorts = nat.PortSet{nat.Port(strconv.Itoa(c.Spec.ContainerPort) + "/tcp"): struct{}{}}
	}
	host := &container.HostConfig{NetworkMode: container.NetworkMode(c.Network)}
	if c.Spec.Memory > 0 {
		host.Memory = c.Spec.Memory
		host.MemorySwap = c.Spec.Memory
	}
	return cfg, host
}

// create creates the container and copies its files in. On failure it
// removes what it created. Errors never include the spec's env values.
func (r *Runtime) create(ctx context.Context, c reconciler.ContainerSpec, cfg *container.Config, host *container.HostConfig) (string, error) {
	files, err := filesTar(c.Spec.Files)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", c.Name, err)
	}
	r.log.Debug("create container", zap.String("name", c.Name), zap.String("image", c.Spec.Image), zap.Int("files", len(c.Spec.Files)))
	resp, err := r.cli.ContainerCreate(ctx, cfg, host, nil, nil, c.Name)
	if cerrdefs.IsConflict(err) {
		return "", fmt.Errorf("create container %s: a container of that name already exists (remove it first): %w", c.Name, err)
	}
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("create container %s: image %s is not present locally (pull it first): %w", c.Name, c.Spec.Image, err)
	}
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", c.Name, err)
	}
	if files != nil {
		err := r.cli.CopyToContainer(ctx, resp.ID, "/", files, container.CopyToContainerOptions{})
		if err != nil {
			return "", r.undo(c.Name, resp.ID, fmt.Errorf("copy files into container %s: %w", c.Name, err))
		}
	}
	return resp.ID, nil
}

// undo force-removes a container that failed half-way, on a fresh context
// (ctx may be what was cancelled), and returns err, joined with the removal's
// error if any.
func (r *Runtime) undo(name, id string, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	r.log.Debug("remove failed container", zap.String("name", name), zap.String("id", state.ShortHash(id)))
	if rerr := r.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
		return errors.Join(err, fmt.Errorf("remove container %s after the failure: %w", name, rerr))
	}
	return err
}

// filesTar returns a tar stream, to be extracted at "/", with each file at
// its target path and mode 0644, or nil when there are no files. Parent
// directories have no entries of their own: the engine creates missing ones
// (0755), and existing ones keep their owner and mode.
func filesTar(files []state.FileContent) (io.Reader, error) {
	if len(files) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, f := range files {
		if !path.IsAbs(f.Target) || path.Clean(f.Target) != f.Target || f.Target == "/" {
			return nil, fmt.Errorf("file target %q: want a clean absolute path", f.Target)
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     strings.TrimPrefix(f.Target, "/"),
			Mode:     0o644,
			Size:     int64(len(f.Content)),
			ModTime:  now,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Target, err)
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, fmt.Errorf("file %s: %w", f.Target, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}
