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

// Runtime runs containers: what Apply calls of the engine, nothing more
// (observing is the application layer's, reconciler/host).
// reconciler/docker implements it on a Docker engine.
type Runtime interface {
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
	// Stop stops the container (SIGTERM, then SIGKILL after stopTimeout)
	// and keeps it, with its files, to be started again by Resume: the
	// previous release, kept ready. A container that does not exist or
	// is stopped already is not an error; one without our labels is.
	Stop(ctx context.Context, name string, stopTimeout time.Duration) error
	// Resume starts the stopped container named name again, as it was
	// created (no pull, no create). A running one is not an error; a
	// missing one wraps ErrNotFound.
	Resume(ctx context.Context, name string) error
	// Logs returns the last tail lines of the container's output.
	Logs(ctx context.Context, name string, tail int) (string, error)
	// RunJob runs a one-off container to completion, streaming its output to
	// out, removes it, and returns its exit code.
	RunJob(ctx context.Context, c ContainerSpec, out io.Writer) (exitCode int, err error)
	// Exec runs cmd inside the running container named name, waits for it
	// to finish, and returns its exit code and its output (stdout and
	// stderr interleaved). err is set only when cmd could not be run.
	Exec(ctx context.Context, name string, cmd []string) (exitCode int, output string, err error)
	// Alias gives the container named name exactly aliases on network: when
	// it has other aliases there (or is not on it) it is disconnected and
	// connected again, which is the only way to change an endpoint's
	// aliases; when it has them already it does nothing. Its published
	// ports are not on network and keep working.
	Alias(ctx context.Context, name, network string, aliases []string) error
	// EnsureNameProxy makes sure p's name proxy runs: nothing when it
	// does with p's port and network; started when stopped; created (on
	// the network, with the service's name as its alias, p.Dir mounted
	// read-only) when missing; replaced when its port or network differ.
	// A container of that name that is not this environment's name proxy
	// is an error, and is left alone.
	EnsureNameProxy(ctx context.Context, p NameProxySpec) error
}

// NameProxySpec is a service's name proxy: the container named Name holds
// the alias Service on Network and forwards each request on Port to
// <Service>-<color>:Port, color read from the marker of Service in Dir.
type NameProxySpec struct {
	Name    string `json:"name"`
	Env     string `json:"env"`
	Service string `json:"service"`
	Port    int    `json:"port"`
	Network string `json:"network"`
	Dir     string `json:"dir"`
}

// Names points each service's name on the environment's network at one of
// its colors. reconciler/nameproxy implements it with the marker files its
// name proxies read on every request.
type Names interface {
	// Point makes service's name, whose markers live in dir, reach color:
	// atomically, so a reader sees the old color or the new one, never
	// neither. color "" removes the marker; a missing one is not an error.
	Point(ctx context.Context, dir, service string, color state.Color) error
}

// Edge is the proxy in front of the services. reconciler/nginx implements it.
type Edge interface {
	// Write replaces path with content atomically when the bytes differ, runs
	// the test command, reloads, and then calls loaded (when not nil) until
	// it knows nginx serves the new file. When the test, the reload or
	// loaded fails it restores the previous file (or removes the new one),
	// reloads if it had reloaded, and returns nginx's message. An existing
	// file whose header does not name the same environment and service as
	// content's (an operator's file, another env's site) is refused,
	// naming the file and its owner, and left as it is.
	Write(ctx context.Context, path string, content []byte, loaded func(context.Context) error) error
	// Switch moves all of a site's traffic to color by writing or removing
	// its marker file in confDir and clearing canary markers; no reload.
	Switch(ctx context.Context, confDir, env, service string, color state.Color) error
	// Shift sends percent (1-99) of a site's requests to color and the rest
	// to the color its main marker names; no reload.
	Shift(ctx context.Context, confDir, env, service string, color state.Color, percent int) error
	// Pin keeps the sessions of a site with a session header on color, the
	// draining color, by writing the site's drain marker in confDir; color
	// "" removes it (a missing one is not an error). No reload: nginx
	// tests the marker on every request.
	Pin(ctx context.Context, confDir, env, service string, color state.Color) error
	// Remove deletes path and the service's markers, tests and reloads.
	Remove(ctx context.Context, confDir, env, service string) error
	// LogOffset is the current end of a site's access log.
	LogOffset(ctx context.Context, path string) (int64, error)
	// Traffic counts color's requests and errors in the access log at path
	// since offset from, and returns the offset to read from next.
	Traffic(ctx context.Context, path string, from int64, color state.Color) (Traffic, int64, error)
}

// Activity is what a DrainProber saw of a draining container at one moment.
type Activity struct {
	// Conns is the number of established TCP connections to the
	// container's port (idle keep-alive connections of nginx included).
	Conns int
	// Busy is how many of them hold a request not yet answered, or moved
	// data within the idle window: streams, requests in flight, and
	// sessions used lately.
	Busy int
	// Open is how many of them a stop would cut: a request not yet
	// answered, or a response (a stream) still being sent at least
	// StreamAge after its request.
	Open int
}

// StreamAge is how long after its request a response that is still being
// sent counts as a stream (Activity.Open): longer than any answer to a
// plain call, shorter than a drain.
const StreamAge = time.Second

// DrainProber measures how busy a draining container is from the host,
// without the app's help. reconciler/docker implements it on the
// container's network namespace; a Runtime that implements it lets ActDrain
// steps end before their deadline.
type DrainProber interface {
	// Activity returns the established TCP connections to port inside the
	// running container named name; a connection is busy when it received
	// data after it last sent some (a request in flight), or when it sent
	// or received data less than idle ago, and open as Activity says.
	Activity(ctx context.Context, name string, port int, idle time.Duration) (Activity, error)
}

// DrainLog is nginx's own view of a draining color: the requests its
// access log says it sent to the color's port. reconciler/nginx implements
// it on the site's access log; an Edge that implements it lets a drain
// with a LogPath wait for sessions used lately, even those whose
// connections the DrainProber does not see between two requests.
type DrainLog interface {
	// LastRequest reads the access log at path from offset from (a
	// negative from reads only the log's last lines) and returns when a
	// request that nginx sent to 127.0.0.1:port (alone or among retries)
	// last ended, the zero time when none did, and the offset after the
	// last complete line read. A missing log has no request.
	LastRequest(ctx context.Context, path string, from int64, port int) (time.Time, int64, error)
}

// Prober runs one health check or smoke request.
type Prober interface {
	// Check sends GET http://127.0.0.1:port+path and returns nil for a 2xx
	// or 3xx answer within timeout.
	Check(ctx context.Context, port int, path string, timeout time.Duration) error
	// Smoke sends r and returns nil when the answer has r.WantStatus.
	Smoke(ctx context.Context, r SmokeRequest, timeout time.Duration) error
}

// Event is what a Notifier is told.
type Event struct {
	Name     state.EventName `json:"event"` // one of state.Events
	Env      string          `json:"env"`
	Commit   string          `json:"commit"`
	Author   string          `json:"author,omitempty"`
	Message  string          `json:"message,omitempty"`
	Services []EventService  `json:"services,omitempty"`
	Duration float64         `json:"durationSeconds,omitempty"`
	// Snapshot is the id of the database snapshot taken before the
	// migrations of this deploy, if any.
	Snapshot string `json:"snapshot,omitempty"`
	Error    string `json:"error,omitempty"`
	// StreamsCut is how many busy connections of old colors (streams,
	// requests in flight) this deploy's drains cut at their deadline.
	StreamsCut int `json:"streamsCut,omitempty"`
}

// EventService is a service a deploy changes.
type EventService struct {
	Name     string `json:"name"`
	OldImage string `json:"oldImage,omitempty"`
	NewImage string `json:"newImage,omitempty"`
}

// Notifier delivers events. It never fails a deploy: delivery problems are
// its own to log and count.
type Notifier interface {
	Notify(ctx context.Context, e Event)
}

// Traffic counts one color's requests in a site's access log.
type Traffic struct {
	Requests int
	Errors   int // answered with a 5xx status
	// Times are the upstream response times of the requests that logged
	// one (nginx's $upstream_response_time; a request nginx answered
	// itself has none), in log order.
	Times []time.Duration
}

// Clock tells the time and waits. The Applier reads deadlines and waits
// between checks through it, so that tests can run them without real time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep returns after d, or ctx.Err() as soon as ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// Snapshotter takes database backup points. awscloud.RDS implements it.
type Snapshotter interface {
	// Snapshot creates snapshot id of the DB instance and returns once it
	// is available; an id that exists already is waited for.
	Snapshot(ctx context.Context, instance, id string) error
}

// HealthChecks updates external health checks. awscloud.Route53 implements it.
type HealthChecks interface {
	// UpdateHealthCheck sets the check's path and port when they differ,
	// and reports whether it changed anything.
	UpdateHealthCheck(ctx context.Context, id, path string, port int) (changed bool, err error)
}

// Records changes Route 53 record sets. awscloud.Route53 implements it.
type Records interface {
	// ChangeRecords sends changes to the hosted zone zone in one
	// ChangeResourceRecordSets batch, which Route 53 makes all or none.
	ChangeRecords(ctx context.Context, zone string, changes []RecordChange) error
}
