package main

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/docker/docker/client"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/backup"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/reconciler/httpprobe"
	"github.com/developer-mesh/reconciler/reconciler/nameproxy"
	"github.com/developer-mesh/reconciler/reconciler/nginx"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// This file wires the adapters (Docker, nginx, git, AWS) into the
// application layer (package host); the commands call it and print.

// loadEnv reads and validates envs/NAME.yaml at the commit. It touches
// nothing on the host.
func loadEnv(ctx context.Context, f envFlags) (host.Source, *state.Env, error) {
	c, err := gitrepo.Open(ctx, f.repo, f.ref)
	if err != nil {
		return host.Source{}, nil, err
	}
	src := source(c)
	e, err := state.Load(c.FS, f.env)
	if err != nil {
		return src, nil, err
	}
	return src, e, nil
}

// source is a commit as the application layer reads it.
func source(c *gitrepo.Commit) host.Source {
	return host.Source{FS: c.FS, Hash: c.Hash, Author: c.Author, Message: c.Message}
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

// resolver is the secrets resolver: the AWS backends are made, and the AWS
// configuration loaded, only when a reference needs them.
type resolver struct{ g *globals }

func (r resolver) Resolve(ctx context.Context, refs []string) (map[string]string, error) {
	res := &secrets.Resolver{Backends: map[string]secrets.Backend{}}
	if schemes := awsSchemes(refs); len(schemes) > 0 {
		cfg, err := r.g.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		if schemes["ssm"] {
			res.Backends["ssm"] = secrets.NewSSM(cfg)
		}
		if schemes["secretsmanager"] {
			res.Backends["secretsmanager"] = secrets.NewSecretsManager(cfg)
		}
	}
	return res.Resolve(ctx, refs)
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

// cloud is host.Cloud on AWS, sharing the process's AWS configuration.
type cloud struct{ g *globals }

func (c cloud) Uploader(ctx context.Context, url string) (backup.Uploader, error) {
	cfg, err := c.g.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return awscloud.NewS3(cfg, url)
}

func (c cloud) Snapshots(ctx context.Context) (reconciler.Snapshotter, error) {
	cfg, err := c.g.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return awscloud.NewRDS(cfg), nil
}

func (c cloud) HealthChecks(ctx context.Context) (reconciler.HealthChecks, error) {
	cfg, err := c.g.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return awscloud.NewRoute53(cfg), nil
}

func (c cloud) SiteChecks(ctx context.Context) (host.SiteChecks, error) {
	cfg, err := c.g.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return awscloud.NewRoute53(cfg), nil
}

// mailer is notify.Mailer through Amazon SES; the AWS configuration is
// loaded when the first email goes out.
type mailer struct{ g *globals }

func (m mailer) SendEmail(ctx context.Context, from string, to []string, subject, body string) (string, error) {
	cfg, err := m.g.awsConfig(ctx)
	if err != nil {
		return "", err
	}
	return awscloud.NewSES(cfg).SendEmail(ctx, from, to, subject, body)
}

// markers reads the name markers (host.Names).
type markers struct{}

func (markers) Colors(dir string) (map[string]string, error) { return nameproxy.ReadColors(dir) }

// rig is the host with the concrete adapters the commands need beyond
// the application layer (status, logs, the checks).
type rig struct {
	*host.Host
	rt   *docker.Runtime
	edge *nginx.Edge
}

// openHost connects to the engine and opens the state dir: once per
// command (the agent keeps its own client between syncs).
func openHost(ctx context.Context, g *globals, e *state.Env) (*rig, error) {
	dir, err := statedir.Open(g.stateDir)
	if err != nil {
		return nil, err
	}
	return hostOn(ctx, g, dir, e)
}

// lockedHost takes the apply lock of e's environment for command (waiting
// up to timeout), then opens the host on the same state dir. The caller
// calls unlock when done.
func lockedHost(ctx context.Context, g *globals, e *state.Env, command string, timeout time.Duration) (h *rig, unlock func(), err error) {
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
func hostOn(ctx context.Context, g *globals, dir *statedir.Dir, e *state.Env) (*rig, error) {
	cli, err := docker.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return newHost(cli, g, dir, e)
}

// newHost wires the adapters for e on an open engine client and state dir.
func newHost(cli *client.Client, g *globals, dir *statedir.Dir, e *state.Env) (*rig, error) {
	key, err := dir.HashKey()
	if err != nil {
		return nil, err
	}
	rt := docker.New(cli, g.log.Named("docker"))
	edge := nginx.New(e.Nginx.Test, e.Nginx.Reload, g.log.Named("nginx"))
	return &rig{rt: rt, edge: edge, Host: &host.Host{
		Runtime: rt, Edge: edge,
		Dir: dir, Key: key,
		Names: markers{}, Secrets: resolver{g}, Prober: httpprobe.New(),
		Log: g.log, Out: g.stdout,
	}}, nil
}

// plan loads, connects, resolves, observes and diffs: what diff does.
func plan(ctx context.Context, g *globals, f envFlags) (*host.Planned, error) {
	src, e, err := loadEnv(ctx, f)
	if err != nil {
		return nil, err
	}
	h, err := openHost(ctx, g, e)
	if err != nil {
		return nil, err
	}
	return h.Plan(ctx, src, e)
}

// orDefault is the env file as loaded, or, when it could not be, an empty
// env of that name with the defaults: status, logs and prune look at a
// host from outside the deployment repository too.
func orDefault(e *state.Env, name string) *state.Env {
	if e != nil {
		return e
	}
	e = &state.Env{Environment: name}
	e.Default()
	return e
}

var _ host.Cloud = cloud{}
var _ host.Secrets = resolver{}
var _ host.Names = markers{}
var _ host.Runtime = (*docker.Runtime)(nil)
