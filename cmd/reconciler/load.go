package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/docker/docker/client"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/httpprobe"
	"github.com/developer-mesh/reconciler/reconciler/nameproxy"
	"github.com/developer-mesh/reconciler/reconciler/nginx"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// loadEnv reads and validates envs/NAME.yaml at the commit. It touches
// nothing on the host.
func loadEnv(ctx context.Context, f envFlags) (*gitrepo.Commit, *state.Env, error) {
	c, err := gitrepo.Open(ctx, f.repo, f.ref)
	if err != nil {
		return nil, nil, err
	}
	e, err := state.Load(c.FS, f.env)
	if err != nil {
		return c, nil, err
	}
	return c, e, nil
}

// resolve reads every referenced file and secret and returns the desired state.
func resolve(ctx context.Context, g *globals, c *gitrepo.Commit, e *state.Env) (*state.Desired, error) {
	refs := e.SecretRefs()
	r, err := resolver(ctx, g, refs)
	if err != nil {
		return nil, err
	}
	vals, err := r.Resolve(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("resolve secrets: %w", err)
	}
	d, err := state.Resolve(e, c.FS, c.Hash, vals)
	if err != nil {
		return nil, err
	}
	if d.Network != "" {
		if d.NamesDir, err = namesDir(g.stateDir, d.Env); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// namesDir is where the name markers of env live: <state dir>/names/<env>,
// absolute, since the name proxies mount it.
func namesDir(stateDir, env string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(stateDir, "names", env))
	if err != nil {
		return "", fmt.Errorf("state dir: %w", err)
	}
	return abs, nil
}

// resolver returns a secrets resolver with the AWS backends that refs use;
// the AWS configuration is loaded only when some reference needs it.
func resolver(ctx context.Context, g *globals, refs []string) (*secrets.Resolver, error) {
	r := &secrets.Resolver{Backends: map[string]secrets.Backend{}}
	schemes := awsSchemes(refs)
	if len(schemes) == 0 {
		return r, nil
	}
	cfg, err := g.awsConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve secrets: %w", err)
	}
	if schemes["ssm"] {
		r.Backends["ssm"] = secrets.NewSSM(cfg)
	}
	if schemes["secretsmanager"] {
		r.Backends["secretsmanager"] = secrets.NewSecretsManager(cfg)
	}
	return r, nil
}

// awsSchemes returns the AWS schemes ("ssm", "secretsmanager") refs use.
func awsSchemes(refs []string) map[string]bool {
	out := map[string]bool{}
	for _, ref := range refs {
		if scheme, _, _ := strings.Cut(ref, ":"); scheme == "ssm" || scheme == "secretsmanager" {
			out[scheme] = true
		}
	}
	return out
}

// host is this machine as reconciler drives it.
type host struct {
	rt   *docker.Runtime
	edge *nginx.Edge
	dir  *statedir.Dir
	key  []byte
}

// awsConfig loads the AWS configuration once per process (secrets, checks,
// backups, snapshots and health checks share it, and with it the cached
// credentials of the instance profile). A failure is not remembered.
func (g *globals) awsConfig(ctx context.Context) (aws.Config, error) {
	g.awsMu.Lock()
	defer g.awsMu.Unlock()
	if g.aws == nil {
		cfg, err := awscloud.Load(ctx)
		if err != nil {
			return aws.Config{}, err
		}
		g.aws = &cfg
	}
	return *g.aws, nil
}

// openHost connects to the engine and opens the state dir: once per
// command (the agent keeps its own client between syncs).
func openHost(ctx context.Context, g *globals, e *state.Env) (*host, error) {
	dir, err := statedir.Open(g.stateDir)
	if err != nil {
		return nil, err
	}
	return hostOn(ctx, g, dir, e)
}

// lockedHost takes the apply lock of e's environment for command (waiting
// up to timeout), then opens the host on the same state dir. The caller
// calls unlock when done.
func lockedHost(ctx context.Context, g *globals, e *state.Env, command string, timeout time.Duration) (h *host, unlock func(), err error) {
	dir, err := statedir.Open(g.stateDir)
	if err != nil {
		return nil, nil, err
	}
	unlock, err = dir.Lock(ctx, e.Environment, command, timeout)
	if err != nil {
		return nil, nil, err
	}
	if h, err = hostOn(ctx, g, dir, e); err != nil {
		unlock()
		return nil, nil, err
	}
	return h, unlock, nil
}

// hostOn connects to the engine for e, on the open state dir.
func hostOn(ctx context.Context, g *globals, dir *statedir.Dir, e *state.Env) (*host, error) {
	key, err := dir.HashKey()
	if err != nil {
		return nil, err
	}
	cli, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newHost(cli, dir, key, e, g.log), nil
}

// newHost wires the adapters for e on an open engine client and state dir.
func newHost(cli *client.Client, dir *statedir.Dir, key []byte, e *state.Env, log *zap.Logger) *host {
	return &host{
		rt:   docker.New(cli, log.Named("docker")),
		edge: nginx.New(e.Nginx.Test, e.Nginx.Reload, log.Named("nginx")),
		dir:  dir,
		key:  key,
	}
}

// observe takes one snapshot of the host for d's environment.
func (h *host) observe(ctx context.Context, d *state.Desired) (*state.Observed, error) {
	var images []string
	if d.Migrations != nil {
		images = append(images, d.Migrations.Spec.Image)
	}
	for _, s := range d.Services {
		images = append(images, s.Spec.Image)
	}
	snap, err := h.rt.Observe(ctx, d.Env, images)
	if err != nil {
		return nil, fmt.Errorf("observe containers: %w", err)
	}
	sites, err := h.edge.Observe(ctx, d.Env, d.Nginx.ConfDir)
	if err != nil {
		return nil, fmt.Errorf("observe nginx: %w", err)
	}
	last, err := h.dir.LastMigration(d.Env)
	if err != nil {
		return nil, err
	}
	o := &state.Observed{Containers: snap.Containers, Foreign: snap.Foreign, Sites: sites, ImageIDs: snap.ImageIDs,
		LastMigration: last, NameProxies: snap.NameProxies}
	if d.NamesDir != "" {
		if o.Names, err = nameproxy.ReadColors(d.NamesDir); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// applier returns the executor for this host; n may be nil.
func (h *host) applier(g *globals, n reconciler.Notifier) *reconciler.Applier {
	return &reconciler.Applier{
		Runtime: h.rt, Edge: h.edge, Prober: httpprobe.New(), Journal: h.dir, Names: nameproxy.Markers{},
		Log: g.log.Named("apply"), Out: g.stdout, Notifier: n,
	}
}

// withCloud gives ap the AWS APIs d's plan steps use: RDS for a snapshot
// before migrations, Route 53 for health checks. The AWS configuration is
// loaded only when d uses one of them.
func withCloud(ctx context.Context, g *globals, ap *reconciler.Applier, d *state.Desired) error {
	snap := d.Migrations != nil && d.Migrations.SnapshotRDS != ""
	r53 := false
	for _, s := range d.Services {
		r53 = r53 || s.Config.Route53 != nil
	}
	if !snap && !r53 {
		return nil
	}
	cfg, err := g.awsConfig(ctx)
	if err != nil {
		return err
	}
	if snap {
		ap.Snapshots = awscloud.NewRDS(cfg)
	}
	if r53 {
		ap.HealthChecks = awscloud.NewRoute53(cfg)
	}
	return nil
}

// plan loads, connects, resolves, observes and diffs: what diff does.
func plan(ctx context.Context, g *globals, f envFlags) (*host, *state.Desired, *reconciler.Plan, error) {
	c, e, err := loadEnv(ctx, f)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := openHost(ctx, g, e)
	if err != nil {
		return nil, nil, nil, err
	}
	d, _, p, err := h.plan(ctx, g, c, e)
	return h, d, p, err
}

// plan resolves e (loaded from commit c), observes the host once and
// diffs; the snapshot is returned for the backup taken before a deploy.
func (h *host) plan(ctx context.Context, g *globals, c *gitrepo.Commit, e *state.Env) (*state.Desired, *state.Observed, *reconciler.Plan, error) {
	d, err := resolve(ctx, g, c, e)
	if err != nil {
		return nil, nil, nil, err
	}
	o, err := h.observe(ctx, d)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := reconciler.Diff(d, o, h.key)
	if err != nil {
		return nil, nil, nil, err
	}
	p.Author, p.Message = c.Author, c.Message
	g.log.Debug("planned", zap.Int("changes", len(p.Changes)))
	return d, o, p, nil
}
