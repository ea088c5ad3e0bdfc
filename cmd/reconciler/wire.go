package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/client"

	"github.com/developer-mesh/reconciler/reconciler/awscloud"
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
	auth, err := f.git.auth(f.repo)
	if err != nil {
		return host.Source{}, nil, err
	}
	c, err := gitrepo.OpenAuth(ctx, f.repo, f.ref, auth)
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
	return host.Source{FS: c.FS, Hash: c.Hash, Author: c.Author, Message: c.Message,
		Contains: func(hash string) (bool, error) {
			ok, err := c.Contains(hash)
			if errors.Is(err, gitrepo.ErrUnknownCommit) {
				err = fmt.Errorf("%w: %w", host.ErrUnknownCommit, err)
			}
			return ok, err
		}}
}

var _ host.DNS = awscloud.Route53{}

// cloud is host.Cloud on AWS: awscloud's APIs, and Route 53's health
// checks of the public sites.
type cloud struct{ awscloud.Cloud }

func (c cloud) SiteChecks(ctx context.Context) (host.SiteChecks, error) {
	return c.Cloud.SiteChecks(ctx)
}

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
	g.aws.Use(awsSettings(e))
	rt := docker.New(cli, g.log.Named("docker"))
	edge := nginx.New(e.Nginx.Test, e.Nginx.Reload, g.log.Named("nginx"))
	return &rig{rt: rt, edge: edge, Host: &host.Host{
		Runtime: rt, Edge: edge,
		Dir: dir, Key: key,
		Names: nameproxy.Markers{}, Markers: nameproxy.Markers{}, Prober: httpprobe.New(), Routes: httpprobe.New(),
		Secrets: g.secrets(),
		Log:     g.log, Out: g.stdout, Progress: g.progress(),
		DNS: awscloud.Route53{Loader: g.aws},
	}}, nil
}

// awsSettings are e's aws block as the AWS loader takes them.
func awsSettings(e *state.Env) awscloud.Settings {
	s := awscloud.Settings{File: state.EnvPath(e.Environment)}
	if e.AWS != nil {
		s.Region, s.Profile = e.AWS.Region, e.AWS.Profile
	}
	return s
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
var _ host.Secrets = secrets.OnDemand{}
var _ host.Markers = nameproxy.Markers{}
var _ host.Runtime = (*docker.Runtime)(nil)
var _ host.Edge = (*nginx.Edge)(nil)
