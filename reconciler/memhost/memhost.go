// Package memhost is a host in memory: a reconciler.Runtime, Edge, Names
// and Journal that keep containers, images, nginx files, markers, access
// logs and the migrations record in maps, and record every call. Observed
// returns the state.Observed a real observe of it would return.
//
// diff --base applies a plan to it to know the host the plan leaves
// behind; the executor's tests run plans against it, with faults injected
// through Fault. It imports nothing the core does not (the core, state,
// templates, zap): no engine, no nginx, no file system.
package memhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

var (
	_ reconciler.Runtime        = Runtime{}
	_ reconciler.ProgressPuller = Runtime{}
	_ reconciler.Edge           = Edge{}
	_ reconciler.DrainProber    = Runtime{}
	_ reconciler.DrainLog       = Edge{}
	_ reconciler.Names          = (*Host)(nil)
	_ reconciler.Journal        = (*Host)(nil)
)

// Runtime is the host's containers and images as a reconciler.Runtime.
type Runtime struct{ *Host }

// Edge is the host's nginx files, markers and access logs as a
// reconciler.Edge.
type Edge struct{ *Host }

// Runtime returns the host as a reconciler.Runtime.
func (h *Host) Runtime() Runtime { return Runtime{h} }

// Edge returns the host as a reconciler.Edge.
func (h *Host) Edge() Edge { return Edge{h} }

// Call is one operation on the host: Op is the method ("start",
// "switch", ...), Target what it acts on (a container name, a path, a
// site "<env>-<service>", or a marker "<dir>/<service>"), Arg its other
// facts in text ("green", "10% green").
type Call struct {
	Op, Target, Arg string
}

// String is "op target arg", without a trailing space.
func (c Call) String() string {
	return strings.TrimSpace(c.Op + " " + c.Target + " " + c.Arg)
}

// Host is an in-memory host. An operation whose context is done fails
// with the context's error and changes nothing. The zero value is not
// usable: call New. Its methods, and those of its Runtime and Edge, are
// safe for concurrent use.
type Host struct {
	// Fault, when set, is asked before each operation with its Call; an
	// error it returns is the operation's, which then changes nothing (it
	// is still recorded in Calls). It runs under the host's lock: it must
	// not call the host.
	Fault func(Call) error
	// JobExit, when set, is the exit code of a RunJob of c (else 0).
	JobExit func(c reconciler.ContainerSpec) int
	// ExecResult, when set, is the exit code and output of an Exec (else
	// 0 and "").
	ExecResult func(name string, cmd []string) (int, string)
	// MarkersUnseen makes the host's nginx workers blind to the conf
	// dir, as workers running as a user that cannot search it are: route
	// checks answer "blue" whatever the markers say. Set it before use.
	MarkersUnseen bool
	// Busy, when set, is the Activity of the draining container name with
	// port (else none: idle). It runs under the host's lock.
	Busy func(name string, port int) reconciler.Activity
	// Used, when set, is when nginx's access log at path last shows a
	// request sent to 127.0.0.1:port (else never). It runs under the
	// host's lock.
	Used func(path string, port int) time.Time

	mu         sync.Mutex
	seq        int64
	containers map[string]*entry
	images     map[string]string                 // reference → ID
	files      map[string][]byte                 // nginx files by path
	markers    map[string]state.Color            // "<confDir>/<env>-<service>" → main marker color ("" none)
	canary     map[string]string                 // "<confDir>/<env>-<service>" → "<percent> <color>" ("" none)
	pins       map[string]state.Color            // "<confDir>/<env>-<service>" → draining color of the drain marker
	names      map[string]map[string]state.Color // names dir → service → color
	logs       map[string][]logLine              // access log path → lines
	output     map[string]string                 // container name → its output
	migrations map[string]string                 // env → spec hash of the last run
	// migrationRuns are the migrations runs applied, by env.
	migrationRuns map[string][]state.MigrationRun
	ownedRecords  map[string][]state.RecordKey
	// records and siteChecks are the host's Route 53: record sets by key,
	// site check ids by service (records.go).
	records    map[state.RecordKey]state.RecordSet
	siteChecks map[string]string
	settings   map[string]map[string]string // env → recorded settings
	calls      []Call
	jobs       []reconciler.ContainerSpec
}

// entry is one container: ours (env set), a name proxy (proxy set) or a
// foreign one (neither).
type entry struct {
	c         state.Container
	env       string
	proxy     *reconciler.NameProxySpec
	hostPorts []int // a foreign container's published ports
}

type logLine struct {
	color  state.Color
	status int
	// upstream is the logged upstream response time; 0 for none.
	upstream time.Duration
}

// New returns an empty host: no containers, no images, no files.
func New() *Host {
	return &Host{
		containers: map[string]*entry{},
		images:     map[string]string{},
		files:      map[string][]byte{},
		markers:    map[string]state.Color{},
		canary:     map[string]string{},
		pins:       map[string]state.Color{},
		names:      map[string]map[string]state.Color{},
		logs:       map[string][]logLine{},
		output:     map[string]string{},
		migrations: map[string]string{},
		settings:   map[string]map[string]string{},
	}
}

// ImageID is the stand-in ID the host gives a pulled reference: the same
// reference always gets the same ID.
func ImageID(ref string) string {
	d := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(d[:])
}

// Seed makes the host hold what o says of d's environment: its
// containers, foreign containers, images, nginx files at their paths
// (with a green marker in the file's directory when Live is green), name
// proxies, name markers (in d.NamesDir) and migrations record. Nothing is
// recorded in Calls.
func (h *Host) Seed(d *state.Desired, o *state.Observed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range o.Containers {
		h.containers[c.Name] = &entry{c: cloneContainer(c), env: d.Env}
	}
	for _, f := range o.Foreign {
		h.containers[f.Name] = &entry{c: state.Container{ID: f.Name, Name: f.Name, State: "running"}, hostPorts: slices.Clone(f.HostPorts)}
	}
	for ref, id := range o.ImageIDs {
		if id != "" {
			h.images[ref] = id
		}
	}
	for _, s := range o.Sites {
		h.files[s.Path] = slices.Clone(s.Content)
		if _, _, _, _, live, _ := templates.ParseHeader(s.Content); live == "" && s.Live == state.Green {
			h.markers[siteKey(path.Dir(s.Path), d.Env, s.Service)] = state.Green
		}
	}
	for _, p := range o.NameProxies {
		h.containers[p.Name] = &entry{
			c:     state.Container{ID: p.Name, Name: p.Name, Service: p.Service, State: p.State},
			proxy: &reconciler.NameProxySpec{Name: p.Name, Env: d.Env, Service: p.Service, Port: p.Port, Network: p.Network, Dir: d.NamesDir},
		}
	}
	if d.NamesDir != "" && len(o.Names) > 0 {
		m := map[string]state.Color{}
		for svc, c := range o.Names {
			m[svc] = c
		}
		h.names[d.NamesDir] = m
	}
	if o.LastMigration != "" {
		h.migrations[d.Env] = o.LastMigration
		if o.MigrationRuns != nil {
			if h.migrationRuns == nil {
				h.migrationRuns = map[string][]state.MigrationRun{}
			}
			h.migrationRuns[d.Env] = slices.Clone(o.MigrationRuns)
		}
	}
	if o.Settings != nil {
		h.settings[d.Env] = maps.Clone(o.Settings)
	}
	h.seedDNS(d.Env, o.DNS)
}

// Observed is what observing d's environment on the host returns, as
// cmd's observe builds it from a Runtime, an Edge, the migrations record
// and the name markers: the containers, foreign containers and name
// proxies, the IDs of d's images, the sites in d's confDir, the last
// migrations run and, when d has a names directory, its markers.
func (h *Host) Observed(ctx context.Context, d *state.Desired) (*state.Observed, error) {
	var images []string
	if d.Migrations != nil {
		images = append(images, d.Migrations.Spec.Image)
	}
	for _, s := range d.Services {
		images = append(images, s.Spec.Image)
	}
	snap, err := h.Runtime().Observe(ctx, d.Env, images)
	if err != nil {
		return nil, fmt.Errorf("observe containers: %w", err)
	}
	sites, err := h.Edge().Observe(ctx, d.Env, d.Nginx.ConfDir)
	if err != nil {
		return nil, fmt.Errorf("observe nginx: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	o := &state.Observed{Containers: snap.Containers, Foreign: snap.Foreign, Sites: sites, ImageIDs: snap.ImageIDs,
		LastMigration: h.migrations[d.Env], MigrationRuns: slices.Clone(h.migrationRuns[d.Env]), NameProxies: snap.NameProxies, Settings: maps.Clone(h.settings[d.Env])}
	if d.NamesDir != "" {
		o.Names = map[string]state.Color{}
		for svc, c := range h.names[d.NamesDir] {
			o.Names[svc] = c
		}
	}
	o.DNS = h.observeDNS(d)
	return o, nil
}

// Calls returns the operations made so far, in order.
func (h *Host) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// Jobs returns the specs of the jobs RunJob ran, in order.
func (h *Host) Jobs() []reconciler.ContainerSpec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.jobs)
}

// Container returns the container named name as Inspect would, and whether
// it exists.
func (h *Host) Container(name string) (state.Container, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.containers[name]
	if !ok {
		return state.Container{}, false
	}
	return cloneContainer(e.c), true
}

// Update changes the container named name with f (its state, its restart
// count, ...), as the engine or an operator would; false when it does not
// exist.
func (h *Host) Update(name string, f func(c *state.Container)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.containers[name]
	if ok {
		f(&e.c)
	}
	return ok
}

// SetLogs sets what Logs returns for the container named name, also one
// that does not exist yet.
func (h *Host) SetLogs(name, logs string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.output[name] = logs
}

// Serve appends to the access log at logPath n requests answered by color
// with status.
func (h *Host) Serve(logPath string, color state.Color, status, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.logs[logPath] = append(h.logs[logPath], logLine{color: color, status: status})
	}
}

// ServeTimed is Serve with an upstream response time logged for each
// request.
func (h *Host) ServeTimed(logPath string, color state.Color, status, n int, upstream time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for range n {
		h.logs[logPath] = append(h.logs[logPath], logLine{color: color, status: status, upstream: upstream})
	}
}

// File returns the nginx file at path, and whether it exists.
func (h *Host) File(path string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.files[path]
	return slices.Clone(b), ok
}

// Live is the color that gets a listening site's requests: its canary
// color with the percent it gets, else the main marker's color (blue
// without one) with 100.
func (h *Host) Live(confDir, env, service string) (color state.Color, percent int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := siteKey(confDir, env, service)
	if c := h.canary[k]; c != "" {
		p, col, _ := strings.Cut(c, " ")
		n, _ := strconv.Atoi(p)
		return state.Color(col), n
	}
	if h.markers[k] == state.Green {
		return state.Green, 100
	}
	return state.Blue, 100
}

// Colors returns the color of every name marker in dir (host.Markers).
func (h *Host) Colors(dir string) (map[string]state.Color, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]state.Color{}
	for svc, c := range h.names[dir] {
		if c != "" {
			out[svc] = c
		}
	}
	return out, nil
}

// Name returns the color the name marker of service in dir holds; "" when
// there is none.
func (h *Host) Name(dir, service string) state.Color {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.names[dir][service]
}

// call records c and asks Fault; an operation with a done ctx fails, as
// one on a real engine does. The caller holds h.mu.
func (h *Host) call(ctx context.Context, op, target, arg string) error {
	c := Call{Op: op, Target: target, Arg: arg}
	h.calls = append(h.calls, c)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, target, err)
	}
	if h.Fault != nil {
		if err := h.Fault(c); err != nil {
			return err
		}
	}
	return nil
}

func siteKey(confDir, env, service string) string {
	return strings.TrimRight(confDir, "/") + "/" + env + "-" + service
}

func cloneContainer(c state.Container) state.Container {
	if c.Networks != nil {
		n := make(map[string][]string, len(c.Networks))
		for k, v := range c.Networks {
			n[k] = slices.Clone(v)
		}
		c.Networks = n
	}
	return c
}

// Observe implements reconciler.Runtime.
func (h Runtime) Observe(ctx context.Context, env string, images []string) (state.Snapshot, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "observe", env, ""); err != nil {
		return state.Snapshot{}, err
	}
	snap := state.Snapshot{ImageIDs: map[string]string{}}
	for _, ref := range images {
		snap.ImageIDs[ref] = h.images[ref]
	}
	for _, name := range state.SortedKeys(h.containers) {
		e := h.containers[name]
		switch {
		case e.proxy != nil:
			if e.proxy.Env == env {
				snap.NameProxies = append(snap.NameProxies, state.NameProxy{Name: name, Service: e.proxy.Service,
					Port: e.proxy.Port, Network: e.proxy.Network, State: e.c.State})
			} else {
				// As reconciler/docker: another env's name proxy may hold
				// a name one of env's would take.
				snap.Foreign = append(snap.Foreign, state.Foreign{Name: name, Owner: "env " + e.proxy.Env + ", service " + e.proxy.Service})
			}
		case e.env == env:
			snap.Containers = append(snap.Containers, cloneContainer(e.c))
		case e.env == "":
			snap.Foreign = append(snap.Foreign, state.Foreign{Name: name, HostPorts: slices.Clone(e.hostPorts)})
		default:
			snap.Foreign = append(snap.Foreign, state.Foreign{Name: name, HostPorts: hostPortsOf(e.c), Owner: "env " + e.env + ", service " + e.c.Service})
		}
	}
	sort.Slice(snap.NameProxies, func(i, j int) bool { return snap.NameProxies[i].Service < snap.NameProxies[j].Service })
	return snap, nil
}

// hostPortsOf is the loopback port c publishes, as a list.
func hostPortsOf(c state.Container) []int {
	if c.HostPort > 0 {
		return []int{c.HostPort}
	}
	return nil
}

// Pull implements reconciler.Runtime: the reference gets ImageID(ref),
// unless it is present already.
func (h Runtime) Pull(ctx context.Context, ref string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "pull", ref, ""); err != nil {
		return "", err
	}
	if h.images[ref] == "" {
		h.images[ref] = ImageID(ref)
	}
	return h.images[ref], nil
}

// PullSize is the size memhost's PullProgress reports for every image.
const PullSize = 3 << 20

// PullProgress implements reconciler.ProgressPuller: Pull, reporting
// PullSize bytes in three steps (0, half, all) before it returns.
func (h Runtime) PullProgress(ctx context.Context, ref string, report func(done, total int64)) (string, error) {
	for _, done := range []int64{0, PullSize / 2, PullSize} {
		report(done, PullSize)
	}
	return h.Pull(ctx, ref)
}

// Start implements reconciler.Runtime: the container runs, read from its
// labels as the Docker adapter reads them. Its image must be present and
// its name free.
func (h Runtime) Start(ctx context.Context, cs reconciler.ContainerSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "start", cs.Name, ""); err != nil {
		return err
	}
	if _, ok := h.containers[cs.Name]; ok {
		return fmt.Errorf("start %s: the name is in use", cs.Name)
	}
	id := h.images[cs.Spec.Image]
	if id == "" {
		return fmt.Errorf("start %s: no such image %s", cs.Name, cs.Spec.Image)
	}
	h.seq++
	l := cs.Labels
	c := state.Container{
		ID: cs.Name, Name: cs.Name, Service: l[state.LabelService], Color: state.Color(l[state.LabelColor]),
		Commit: l[state.LabelCommit], SpecHash: l[state.LabelSpecHash], ImageID: id, State: "running",
		StartedAt: time.Unix(h.seq, 0).UTC(), HostPort: cs.HostPort, Memory: cs.Spec.Memory,
	}
	if s := l[state.LabelSpec]; s != "" {
		if err := json.Unmarshal([]byte(s), &c.Spec); err != nil {
			return fmt.Errorf("start %s: spec label: %w", cs.Name, err)
		}
	}
	if cs.EnvNetwork != "" {
		c.Networks = map[string][]string{cs.EnvNetwork: slices.Sorted(slices.Values(cs.Aliases))}
	}
	h.containers[cs.Name] = &entry{c: c, env: l[state.LabelEnv]}
	return nil
}

// Inspect implements reconciler.Runtime.
func (h Runtime) Inspect(ctx context.Context, name string) (state.Container, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "inspect", name, ""); err != nil {
		return state.Container{}, err
	}
	e, ok := h.containers[name]
	if !ok {
		return state.Container{}, fmt.Errorf("inspect container %s: %w", name, reconciler.ErrNotFound)
	}
	return cloneContainer(e.c), nil
}

// Remove implements reconciler.Runtime; like the Docker adapter it refuses
// a container that is neither ours nor a name proxy.
func (h Runtime) Remove(ctx context.Context, name string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "remove", name, ""); err != nil {
		return err
	}
	e, ok := h.containers[name]
	if !ok {
		return nil
	}
	if e.env == "" && e.proxy == nil {
		return fmt.Errorf("remove container %s: not ours", name)
	}
	delete(h.containers, name)
	return nil
}

// Stop implements reconciler.Runtime: the container stays, exited.
func (h Runtime) Stop(ctx context.Context, name string, _ time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "stop", name, ""); err != nil {
		return err
	}
	e, ok := h.containers[name]
	if !ok {
		return nil
	}
	if e.env == "" {
		return fmt.Errorf("stop container %s: not ours", name)
	}
	e.c.State = "exited"
	return nil
}

// Resume implements reconciler.Runtime: a stopped container runs again,
// started later than every other.
func (h Runtime) Resume(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "resume", name, ""); err != nil {
		return err
	}
	e, ok := h.containers[name]
	if !ok {
		return fmt.Errorf("resume container %s: %w", name, reconciler.ErrNotFound)
	}
	if e.c.State != "running" {
		h.seq++
		e.c.State, e.c.StartedAt, e.c.RestartCount = "running", time.Unix(h.seq, 0).UTC(), 0
	}
	return nil
}

// Logs implements reconciler.Runtime: what SetLogs set, for a container
// that exists.
func (h Runtime) Logs(ctx context.Context, name string, _ int) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "logs", name, ""); err != nil {
		return "", err
	}
	if _, ok := h.containers[name]; ok {
		return h.output[name], nil
	}
	return "", nil
}

// RunJob implements reconciler.Runtime: the job is recorded, and exits
// with JobExit's code.
func (h Runtime) RunJob(ctx context.Context, c reconciler.ContainerSpec, _ io.Writer) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "run-job", c.Name, strings.Join(c.Spec.Command, " ")); err != nil {
		return 0, err
	}
	if h.images[c.Spec.Image] == "" {
		return 0, fmt.Errorf("run %s: no such image %s", c.Name, c.Spec.Image)
	}
	h.jobs = append(h.jobs, c)
	if h.JobExit != nil {
		return h.JobExit(c), nil
	}
	return 0, nil
}

// Exec implements reconciler.Runtime: ExecResult's answer, for a running
// container.
func (h Runtime) Exec(ctx context.Context, name string, cmd []string) (int, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "exec", name, strings.Join(cmd, " ")); err != nil {
		return 0, "", err
	}
	if e, ok := h.containers[name]; !ok || !e.c.Running() {
		return 0, "", fmt.Errorf("exec in %s: not running", name)
	}
	if h.ExecResult != nil {
		code, out := h.ExecResult(name, cmd)
		return code, out, nil
	}
	if p := h.containers[name].proxy; p != nil && slices.Equal(cmd, reconciler.NameCheckCommand(p.Port)) {
		// The proxy answers the color its marker names.
		if c := h.names[p.Dir][p.Service]; c != "" {
			return 0, string(c) + "\n", nil
		}
		return 1, "status 503: no live color yet", nil
	}
	return 0, "", nil
}

// Alias implements reconciler.Runtime; a container that does not exist
// is not an error.
func (h Runtime) Alias(ctx context.Context, name, network string, aliases []string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "alias", name, network+" "+strings.Join(aliases, ",")); err != nil {
		return err
	}
	e, ok := h.containers[name]
	if !ok {
		return nil
	}
	if e.c.Networks == nil {
		e.c.Networks = map[string][]string{}
	}
	e.c.Networks[network] = slices.Sorted(slices.Values(aliases))
	return nil
}

// EnsureNameProxy implements reconciler.Runtime.
func (h Runtime) EnsureNameProxy(ctx context.Context, p reconciler.NameProxySpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "ensure-name-proxy", p.Name, strconv.Itoa(p.Port)); err != nil {
		return err
	}
	if e, ok := h.containers[p.Name]; ok && e.proxy == nil {
		return fmt.Errorf("name proxy %s: the name is held by a container that is not this environment's name proxy", p.Name)
	}
	h.containers[p.Name] = &entry{c: state.Container{ID: p.Name, Name: p.Name, Service: p.Service, State: "running"}, proxy: &p}
	return nil
}

// Point implements reconciler.Names.
func (h *Host) Point(ctx context.Context, dir, service string, color state.Color) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "point", dir+"/"+service, string(color)); err != nil {
		return err
	}
	if color == "" {
		delete(h.names[dir], service)
		return nil
	}
	if h.names[dir] == nil {
		h.names[dir] = map[string]state.Color{}
	}
	h.names[dir][service] = color
	return nil
}

// RecordSettings implements reconciler.Journal.
func (h *Host) RecordSettings(env string, settings map[string]string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(context.Background(), "record-settings", env, ""); err != nil {
		return err
	}
	if settings == nil {
		settings = map[string]string{}
	}
	h.settings[env] = maps.Clone(settings)
	return nil
}

// RecordOwnedRecords implements reconciler.Journal. The in-memory host
// keeps no Route 53 record sets: it counts the call and keeps the keys.
func (h *Host) RecordOwnedRecords(env string, keys []state.RecordKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(context.Background(), "record-owned-records", env, strconv.Itoa(len(keys))); err != nil {
		return err
	}
	if h.ownedRecords == nil {
		h.ownedRecords = map[string][]state.RecordKey{}
	}
	h.ownedRecords[env] = slices.Clone(keys)
	return nil
}

// RecordMigrationRuns implements reconciler.Journal.
func (h *Host) RecordMigrationRuns(env string, runs []state.MigrationRun) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(context.Background(), "record-migration-runs", env, strconv.Itoa(len(runs))); err != nil {
		return err
	}
	if h.migrationRuns == nil {
		h.migrationRuns = map[string][]state.MigrationRun{}
	}
	h.migrationRuns[env] = slices.Clone(runs)
	return nil
}

// RecordMigration implements reconciler.Journal.
func (h *Host) RecordMigration(env, hash string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(context.Background(), "record-migration", env, hash); err != nil {
		return err
	}
	h.migrations[env] = hash
	return nil
}
