package reconciler

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// ErrNotFound is returned by Runtime.Inspect for a container that does not exist.
var ErrNotFound = errors.New("not found")

// Runtime runs containers. reconciler/docker implements it on a Docker engine.
type Runtime interface {
	// Observe returns our containers of env (by label, sorted by name), the
	// foreign containers, and the local image ID of each of images ("" when
	// absent). It is one snapshot.
	Observe(ctx context.Context, env string, images []string) (ours []state.Container, foreign []state.Foreign, imageIDs map[string]string, err error)
	// Pull pulls ref with the credentials of the Docker config and returns the
	// local image ID. It fails without side effects when the pull fails.
	Pull(ctx context.Context, ref string) (imageID string, err error)
	// Start creates the container, copies its files in, and starts it with
	// restart policy unless-stopped, ports on 127.0.0.1 only. When any part
	// fails it removes what it created and returns the error.
	Start(ctx context.Context, c ContainerSpec) error
	// Inspect returns the container named name, or ErrNotFound.
	Inspect(ctx context.Context, name string) (state.Container, error)
	// Remove stops the container (SIGTERM, then SIGKILL after stopTimeout)
	// and removes it. A container that does not exist is not an error.
	Remove(ctx context.Context, name string, stopTimeout time.Duration) error
	// Logs returns the last tail lines of the container's output.
	Logs(ctx context.Context, name string, tail int) (string, error)
	// RunJob runs a one-off container to completion, streaming its output to
	// out, removes it, and returns its exit code.
	RunJob(ctx context.Context, c ContainerSpec, out io.Writer) (exitCode int, err error)
}

// Edge is the proxy in front of the services. reconciler/nginx implements it.
type Edge interface {
	// Observe returns the sites of env in confDir that reconciler wrote.
	Observe(ctx context.Context, env, confDir string) ([]state.Site, error)
	// Write replaces path with content atomically when the bytes differ, runs
	// the test command, and reloads. When the test fails it restores the
	// previous file (or removes the new one) and returns nginx's message.
	Write(ctx context.Context, path string, content []byte) error
	// Switch moves a site's traffic to color by writing or removing its
	// marker file in confDir; no reload.
	Switch(ctx context.Context, confDir, env, service, color string) error
	// Remove deletes path and the service's marker, tests and reloads.
	Remove(ctx context.Context, confDir, env, service string) error
}

// Prober runs one health check.
type Prober interface {
	// Check sends GET http://127.0.0.1:port+path and returns nil for a 2xx
	// or 3xx answer within timeout.
	Check(ctx context.Context, port int, path string, timeout time.Duration) error
}
