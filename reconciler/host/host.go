// Package host is reconciler's application layer: one method per thing a
// user or the agent does to this machine for one environment (observe,
// plan, deploy, retain images, status, the migrations dry-run, the agent's
// sync). It sits between the commands in cmd/reconciler, which only turn
// flags into calls and print, and the core (package reconciler: the pure
// planner and the executor). It depends on small interfaces, declared
// here, not on the Docker client, go-git or the AWS SDK: the commands wire
// the adapters in, and tests wire the in-memory host or their own fakes.
package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// Runtime is the container engine as the application layer uses it: what
// the executor drives, plus what status, logs and retention read.
// reconciler/docker implements it.
type Runtime interface {
	reconciler.Runtime
	// Observe returns one snapshot of env on the engine: our containers
	// (by label, sorted by name), the foreign containers, the local image
	// ID of each of images ("" when absent), and env's name proxies.
	Observe(ctx context.Context, env string, images []string) (state.Snapshot, error)
	// Resources returns what env's containers use now.
	Resources(ctx context.Context, env string) ([]state.Resources, error)
	// StreamLogs copies a container's output to stdout and stderr, the
	// last tail lines first (0: all), until it ends or, with follow, until
	// ctx is done.
	StreamLogs(ctx context.Context, name string, tail int, follow bool, stdout, stderr io.Writer) error
	Images
}

// Images is what image retention needs of the engine.
type Images interface {
	// ImagesInUse returns the image ID of every container on the host, of
	// any state and owner.
	ImagesInUse(ctx context.Context) (map[string]bool, error)
	// ImageInfo inspects the image id; found is false when it is gone.
	ImageInfo(ctx context.Context, id string) (info state.ImageInfo, found bool, err error)
	// RemoveImage removes the image and its tags, without force.
	RemoveImage(ctx context.Context, info state.ImageInfo) error
	// UnusedProxyImages returns the name proxy images that no container
	// uses, except the current one.
	UnusedProxyImages(ctx context.Context, inUse map[string]bool) ([]state.ImageInfo, error)
}

// Edge is nginx as the application layer uses it: what the executor
// drives, plus reading the sites reconciler wrote. reconciler/nginx
// implements it.
type Edge interface {
	reconciler.Edge
	// Observe returns the sites of env in confDir that reconciler wrote.
	Observe(ctx context.Context, env, confDir string) ([]state.Site, error)
}

// Markers reads where the name proxies of an environment forward.
type Markers interface {
	// Colors returns the color each service's marker in dir holds; a
	// missing dir is no marker.
	Colors(dir string) (map[string]state.Color, error)
}

// Secrets resolves secret references ("ssm:/path", "env:VAR", ...) to
// their values. Errors never quote a value.
type Secrets interface {
	Resolve(ctx context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error)
}

// DNS reads and changes the env's Route 53 record sets (awscloud.Route53).
type DNS interface {
	reconciler.Records
	// RecordSets returns the record sets of zone with name and type, of
	// every set identifier, in normal form.
	RecordSets(ctx context.Context, zone, name, typ string) ([]state.RecordSet, error)
	// SiteCheckIDs returns the id of the health check of each site of
	// checks, by service; a site without a check is absent.
	SiteCheckIDs(ctx context.Context, checks []state.SiteHealthCheck) (map[string]string, error)
}

// Host is this machine as reconciler drives it for one environment: the
// engine, nginx, the state directory and the host's hash key. Make one per
// command (the agent makes one per sync); it is not safe for concurrent
// use.
type Host struct {
	Runtime Runtime
	Edge    Edge
	Dir     *statedir.Dir
	// Key is the host's hash key (statedir.Dir.HashKey).
	Key []byte
	// Names points the name proxies (the executor's name steps); Markers
	// reads where they point.
	Names   reconciler.Names
	Markers Markers
	Secrets Secrets
	// Prober runs health checks and smoke requests.
	Prober reconciler.Prober
	// Routes asks nginx which color it routes each site to (status, the
	// agent's heal); nil does not ask.
	Routes Routes
	Log    *zap.Logger
	// Out receives what the executor prints (the migrations job's output).
	Out io.Writer
	// Clock times the executor's waits; nil is real time.
	Clock reconciler.Clock
	// Progress is told how the executor's long steps go; nil is none.
	Progress reconciler.Progress
	// DNS is Route 53, for the env's record sets (route53.records); nil
	// when no AWS access is configured.
	DNS DNS
}

// Scope is what one observation covers: an environment, where its nginx
// files are, the images whose local IDs the planner compares, and the
// directory of its name markers ("" for none).
type Scope struct {
	Env      string
	ConfDir  string
	Images   []string
	NamesDir string
	// DNS asks for the env's Route 53 record sets: those of Records and
	// those the env owns (the state dir's record), with the site checks
	// Records name (SiteChecks).
	DNS        bool
	Records    []state.RecordSet
	SiteChecks []state.SiteHealthCheck
}

// ScopeOf is the scope a plan of d needs: every image d runs.
func ScopeOf(d *state.Desired) Scope {
	s := Scope{Env: d.Env, ConfDir: d.Nginx.ConfDir, NamesDir: d.NamesDir, DNS: true, Records: d.Records, SiteChecks: d.SiteChecks}
	if d.Migrations != nil {
		s.Images = append(s.Images, d.Migrations.Spec.Image)
	}
	for _, svc := range d.Services {
		s.Images = append(s.Images, svc.Spec.Image)
	}
	return s
}

// EnvScope is the scope of e as written, for the commands that look at a
// host without resolving its desired state (status, logs, prune).
func (h *Host) EnvScope(e *state.Env) (Scope, error) {
	s := Scope{Env: e.Environment, ConfDir: e.Nginx.ConfDir}
	for _, name := range state.SortedKeys(e.Services) {
		s.Images = append(s.Images, e.Services[name].Image)
	}
	dir, err := h.Dir.NamesDir(e.Environment)
	if err != nil {
		return s, err
	}
	s.NamesDir = dir
	return s, nil
}

// Observe takes one snapshot of the host for the scope: one list of the
// engine's containers, the nginx files reconciler owns, the migrations
// record and the name markers, and, with s.DNS, the env's Route 53
// record sets (ObserveDNS). It changes nothing.
func (h *Host) Observe(ctx context.Context, s Scope) (*state.Observed, error) {
	snap, err := h.Runtime.Observe(ctx, s.Env, s.Images)
	if err != nil {
		return nil, fmt.Errorf("observe containers: %w", err)
	}
	sites, err := h.Edge.Observe(ctx, s.Env, s.ConfDir)
	if err != nil {
		return nil, fmt.Errorf("observe nginx: %w", err)
	}
	last, err := h.Dir.LastMigration(s.Env)
	if err != nil {
		return nil, err
	}
	settings, err := h.Dir.Settings(s.Env)
	if err != nil {
		return nil, err
	}
	runs, err := h.Dir.MigrationRuns(s.Env)
	if err != nil {
		return nil, err
	}
	o := &state.Observed{Containers: snap.Containers, Foreign: snap.Foreign, Sites: sites, ImageIDs: snap.ImageIDs,
		LastMigration: last, MigrationRuns: runs, NameProxies: snap.NameProxies, Settings: settings}
	if s.NamesDir != "" && h.Markers != nil {
		if o.Names, err = h.Markers.Colors(s.NamesDir); err != nil {
			return nil, err
		}
	}
	if s.DNS {
		if o.DNS, err = h.ObserveDNS(ctx, s); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// ObserveDNS reads what Route 53 holds of the scope's record sets: every
// record set (any set identifier) of each zone, name and type the env
// declares or owns, the ids of the site checks the records name, and the
// ownership record. It returns nil, with no call, when the env declares
// and owns none.
func (h *Host) ObserveDNS(ctx context.Context, s Scope) (*state.ObservedDNS, error) {
	owned, err := h.Dir.OwnedRecords(s.Env)
	if err != nil {
		return nil, err
	}
	if len(s.Records) == 0 && len(owned) == 0 {
		return nil, nil
	}
	if h.DNS == nil {
		return nil, errors.New("observe Route 53: the env has route53.records (or owned some) and no AWS access is configured")
	}
	o := &state.ObservedDNS{Owned: owned, SiteChecks: map[string]string{}}
	names := map[state.RecordKey]bool{} // zone, name and type; no set identifier
	var checks []state.SiteHealthCheck
	for _, r := range s.Records {
		names[state.RecordKey{Zone: r.Zone, Name: r.Name, Type: r.Type}] = true
		if r.HealthCheckService == "" {
			continue
		}
		for _, c := range s.SiteChecks {
			if c.Service == r.HealthCheckService && !slices.ContainsFunc(checks, func(x state.SiteHealthCheck) bool { return x.Service == c.Service }) {
				checks = append(checks, c)
			}
		}
	}
	for _, k := range owned {
		names[state.RecordKey{Zone: k.Zone, Name: k.Name, Type: k.Type}] = true
	}
	keys := slices.Collect(maps.Keys(names))
	slices.SortFunc(keys, func(a, b state.RecordKey) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	for _, k := range keys {
		sets, err := h.DNS.RecordSets(ctx, k.Zone, k.Name, k.Type)
		if err != nil {
			return nil, fmt.Errorf("observe Route 53: %w", err)
		}
		o.Records = append(o.Records, sets...)
	}
	if len(checks) > 0 {
		if o.SiteChecks, err = h.DNS.SiteCheckIDs(ctx, checks); err != nil {
			return nil, fmt.Errorf("observe Route 53: %w", err)
		}
	}
	return o, nil
}

// Source is a commit of the desired state: its files, hash and author.
// state/gitrepo's Commit gives one.
type Source struct {
	FS      fs.FS
	Hash    string
	Author  string
	Message string
	// Contains reports whether hash is this commit or one of its
	// ancestors, ErrUnknownCommit when the repository does not hold hash;
	// nil when the repository cannot tell.
	Contains func(hash string) (bool, error)
}

// Resolve reads every file and secret e references at src and returns the
// desired state. Secrets are resolved only here.
func (h *Host) Resolve(ctx context.Context, src Source, e *state.Env) (*state.Desired, error) {
	vals := map[state.SecretRef]string{}
	if refs := e.SecretRefs(); len(refs) > 0 {
		if h.Secrets == nil {
			return nil, fmt.Errorf("resolve secrets: no resolver")
		}
		var err error
		if vals, err = h.Secrets.Resolve(ctx, refs); err != nil {
			return nil, fmt.Errorf("resolve secrets: %w", err)
		}
	}
	d, err := state.Resolve(e, src.FS, src.Hash, vals)
	if err != nil {
		return nil, err
	}
	if d.Network != "" {
		if d.NamesDir, err = h.Dir.NamesDir(d.Env); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// writeChecker is an Edge that can tell, before any change, whether a
// write would be refused (reconciler/nginx and memhost are).
type writeChecker interface {
	CheckWrite(path string, content []byte) error
}

// checkWrites refuses a plan that would write an nginx file reconciler
// did not write for the same site (an operator's own file, another env's
// file whose name collides), before anything changes: the apply would
// otherwise start containers and stop at the write.
func (h *Host) checkWrites(p *reconciler.Plan) error {
	wc, ok := h.Edge.(writeChecker)
	if !ok {
		return nil
	}
	var errs []error
	for _, c := range p.Changes {
		for _, s := range c.Steps {
			if s.Action == reconciler.ActWriteNginx && s.Site != nil {
				if err := wc.CheckWrite(s.Site.Path, s.Site.Content); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("plan: %w; nothing was changed", errors.Join(errs...))
	}
	return nil
}

// Planned is a plan with what it was made from: the env file, its
// resolved desired state and the snapshot of the host.
type Planned struct {
	Env      *state.Env
	Desired  *state.Desired
	Observed *state.Observed
	Plan     *reconciler.Plan
}

// Plan resolves e at src, observes the host once and diffs. The snapshot
// is kept for the backup a deploy takes first.
func (h *Host) Plan(ctx context.Context, src Source, e *state.Env) (*Planned, error) {
	d, err := h.Resolve(ctx, src, e)
	if err != nil {
		return nil, err
	}
	o, err := h.Observe(ctx, ScopeOf(d))
	if err != nil {
		return nil, err
	}
	p, err := reconciler.Diff(d, o, h.Key)
	if err != nil {
		return nil, err
	}
	if err := h.checkWrites(p); err != nil {
		return nil, err
	}
	p.Author, p.Message = src.Author, src.Message
	h.Log.Debug("planned", zap.Int("changes", len(p.Changes)))
	return &Planned{Env: e, Desired: d, Observed: o, Plan: p}, nil
}
