package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/developer-mesh/reconciler/reconciler"
)

// StreamLogs copies the container's output, demultiplexed, to stdout and
// stderr: the last tail lines (tail <= 0: all), and with follow everything
// it writes after that until ctx is cancelled or the container stops. A
// cancelled ctx while following is not an error. It returns an error
// wrapping reconciler.ErrNotFound when no container is named name.
func (r *Runtime) StreamLogs(ctx context.Context, name string, tail int, follow bool, stdout, stderr io.Writer) error {
	t := "all"
	if tail > 0 {
		t = strconv.Itoa(tail)
	}
	rc, err := r.cli.ContainerLogs(ctx, name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: t, Follow: follow})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("logs of container %s: %w", name, reconciler.ErrNotFound)
	}
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs of container %s: %w", name, err)
	}
	defer rc.Close()
	// Closing the stream is what ends a blocked read when ctx ends.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	if _, err := stdcopy.StdCopy(stdout, stderr, rc); err != nil && !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs of container %s: %w", name, err)
	}
	return nil
}
