package docker

import (
	"bytes"
	"context"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/developer-mesh/reconciler/reconciler"
)

// Exec implements reconciler.Runtime with ContainerExecCreate, Attach and
// Inspect. The command runs with the container's environment, without a
// TTY; its output is read until it ends. A container that does not exist
// is an error wrapping reconciler.ErrNotFound.
func (r *Runtime) Exec(ctx context.Context, name string, cmd []string) (int, string, error) {
	ex, err := r.cli.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if cerrdefs.IsNotFound(err) {
		return -1, "", fmt.Errorf("exec in container %s: %w", name, reconciler.ErrNotFound)
	}
	if err != nil {
		return -1, "", fmt.Errorf("exec in container %s: %w", name, err)
	}
	att, err := r.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, "", fmt.Errorf("exec in container %s: attach: %w", name, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, att.Reader); err != nil {
		if ctx.Err() != nil {
			return -1, out.String(), fmt.Errorf("exec in container %s: %w", name, ctx.Err())
		}
		return -1, out.String(), fmt.Errorf("exec in container %s: read output: %w", name, err)
	}
	// The stream ends when the process exits, but the engine may record
	// the exit code a moment later.
	for {
		ins, err := r.cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return -1, out.String(), fmt.Errorf("exec in container %s: inspect: %w", name, err)
		}
		if !ins.Running {
			return ins.ExitCode, out.String(), nil
		}
		select {
		case <-ctx.Done():
			return -1, out.String(), fmt.Errorf("exec in container %s: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
