package main

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/httpprobe"
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
func resolve(ctx context.Context, c *gitrepo.Commit, e *state.Env) (*state.Desired, error) {
	r, err := resolver(ctx, e.SecretRefs())
	if err != nil {
		return nil, err
	}
	vals, err := r.Resolve(ctx, e.SecretRefs())
	if err != nil {
		return nil, fmt.Errorf("resolve secrets: %w", err)
	}
	return state.Resolve(e, c.FS, c.Hash, vals)
}

// resolver returns a secrets resolver with the AWS backends that refs use;
// the AWS configuration is loaded only when some reference needs it.
func resolver(ctx context.Context, refs []string) (*secrets.Resolver, error) {
	r := &secrets.Resolver{Backends: map[string]secrets.Backend{}}
	schemes := awsSchemes(refs)
	if len(schemes) == 0 {
		return r, nil
	}
	cfg, err := awscloud.Load(ctx)
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

func openHost(ctx context.Context, g *globals, e *state.Env) (*host, error) {
	dir, err := statedir.Open(g.stateDir)
	if err != nil {
		return nil, err
	}
	key, err := dir.HashKey()
	if err != nil {
		return nil, err
	}
	cli, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &host{
		rt:   docker.New(cli, g.log.Named("docker")),
		edge: nginx.New(e.Nginx.Test, e.Nginx.Reload, g.log.Named("nginx")),
		dir:  dir,
		key:  key,
	}, nil
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
	ours, foreign, ids, err := h.rt.Observe(ctx, d.Env, images)
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
	return &state.Observed{Containers: ours, Foreign: foreign, Sites: sites, ImageIDs: ids, LastMigration: last}, nil
}

// applier returns the executor for this host; n may be nil.
func (h *host) applier(g *globals, n reconciler.Notifier) *reconciler.Applier {
	return &reconciler.Applier{
		Runtime: h.rt, Edge: h.edge, Prober: httpprobe.New(), Journal: h.dir,
		Log: g.log.Named("apply"), Out: g.stdout, Notifier: n,
	}
}

// withCloud gives ap the AWS APIs d's plan steps use: RDS for a snapshot
// before migrations, Route 53 for health checks. The AWS configuration is
// loaded only when d uses one of them.
func withCloud(ctx context.Context, ap *reconciler.Applier, d *state.Desired) error {
	snap := d.Migrations != nil && d.Migrations.SnapshotRDS != ""
	r53 := false
	for _, s := range d.Services {
		r53 = r53 || s.Config.Route53 != nil
	}
	if !snap && !r53 {
		return nil
	}
	cfg, err := awscloud.Load(ctx)
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

// plan loads, resolves, observes and diffs: everything diff and apply share.
func plan(ctx context.Context, g *globals, f envFlags) (*host, *state.Desired, *reconciler.Plan, error) {
	c, e, err := loadEnv(ctx, f)
	if err != nil {
		return nil, nil, nil, err
	}
	return planLoaded(ctx, g, c, e)
}

// planLoaded is plan for an env already loaded from commit c.
func planLoaded(ctx context.Context, g *globals, c *gitrepo.Commit, e *state.Env) (*host, *state.Desired, *reconciler.Plan, error) {
	d, err := resolve(ctx, c, e)
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := openHost(ctx, g, e)
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
	return h, d, p, nil
}
