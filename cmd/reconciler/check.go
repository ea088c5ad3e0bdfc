package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/reconciler/httpprobe"
	"github.com/developer-mesh/reconciler/reconciler/nginx"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

func init() { commands = append(commands, checkCmd) }

func checkCmd(g *globals) *cobra.Command {
	var f envFlags
	var cf checkFlags
	cmd := &cobra.Command{
		Use:   "check --env NAME [--repo PATH|URL] [--ref REV]",
		Short: "Run the pre-deploy checks alone: engine, nginx test, nginx workers see the conf dir, AWS credentials, secrets, images, memory, disk (exit 0 all pass, 1 a failure)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			src, e, err := loadEnv(ctx, f)
			if err != nil {
				return host.ListErrors(err)
			}
			h, err := openHost(ctx, g, e)
			if err != nil {
				return err
			}
			c, err := cf.checker(ctx, g, h, e)
			if err != nil {
				return err
			}
			report := h.Check(ctx, src, e, c)
			fmt.Fprint(g.stdout, report.String())
			if report.Err() != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("pre-deploy checks failed for %s", f.env)}
			}
			return nil
		},
	}
	f.register(cmd)
	cf.register(cmd, false)
	return cmd
}

// checkFlags are the pre-deploy check settings of check and apply.
type checkFlags struct {
	skip       bool
	hostMemory string
	reserve    string
	minDisk    string
}

func (cf *checkFlags) register(cmd *cobra.Command, skippable bool) {
	if skippable {
		cmd.Flags().BoolVar(&cf.skip, "skip-checks", false, "do not run the pre-deploy checks (see reconciler check)")
	}
	cmd.Flags().StringVar(&cf.hostMemory, "host-memory", "", "memory the host has for containers, such as 2g (default: what the Docker engine reports)")
	cmd.Flags().StringVar(&cf.reserve, "memory-reserve", "256m", "memory kept free for the OS, nginx and Docker")
	cmd.Flags().StringVar(&cf.minDisk, "min-disk", "1g", "free space the Docker data root must have")
}

// checker builds the pre-deploy checks for e on this host. The AWS
// credentials are checked only when e uses AWS (secrets or backup.s3).
func (cf *checkFlags) checker(ctx context.Context, g *globals, h *rig, e *state.Env) (*preflight.Checker, error) {
	var sizes [3]int64
	for i, s := range []struct{ flag, v string }{{"--host-memory", cf.hostMemory}, {"--memory-reserve", cf.reserve}, {"--min-disk", cf.minDisk}} {
		if s.v == "" {
			continue
		}
		n, err := state.ParseMemory(s.v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.flag, err)
		}
		sizes[i] = n
	}
	c := &preflight.Checker{
		Engine: engine{h.rt}, Registry: h.rt, Nginx: h.edge,
		HostMemory: sizes[0], MemoryReserve: sizes[1], MinDisk: sizes[2],
		Workers: workerProbe(e),
	}
	if secrets.UsesAWS(e.SecretRefs()) || e.Backup != nil && e.Backup.S3 != "" {
		// One helper process: a missing configuration fails the command
		// here, as one line of guidance; an invalid credential is the
		// aws check's result.
		arn, err := awscloud.Identity{Loader: g.aws}.CallerIdentity(ctx)
		if errors.Is(err, awscloud.ErrNoRegion) || errors.Is(err, awscloud.ErrNoCredentials) || errors.Is(err, awscloud.ErrNoHelper) {
			return nil, err
		}
		c.Identity = knownIdentity{arn: arn, err: err}
	}
	return c, nil
}

// knownIdentity is preflight.Identity with the answer asked for already.
type knownIdentity struct {
	arn string
	err error
}

func (k knownIdentity) CallerIdentity(context.Context) (string, error) { return k.arn, k.err }

// engine adapts the Docker runtime to preflight.Engine.
type engine struct{ rt *docker.Runtime }

func (a engine) Info(ctx context.Context) (string, int64, string, error) {
	i, err := a.rt.Info(ctx)
	return i.Version, i.MemTotal, i.RootDir, err
}

func (a engine) RunningMemory(ctx context.Context) (map[string]int64, error) {
	return a.rt.RunningMemory(ctx)
}

func (a engine) KeptMemory(ctx context.Context) (map[string]int64, error) {
	return a.rt.KeptMemory(ctx)
}

// workerProbe is the check that nginx's workers see e's conf dir, asked
// through the probe location of e's sites with a listen address.
func workerProbe(e *state.Env) nginx.Workers {
	w := nginx.Workers{Env: e.Environment, ConfDir: e.Nginx.ConfDir, Prober: httpprobe.New()}
	names := make([]string, 0, len(e.Services))
	for n := range e.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := e.Services[n]
		l, err := state.ParseListen(s.Listen)
		if s.Listen == "" || s.ContainerPort == 0 || err != nil {
			continue
		}
		ds := state.DesiredService{Name: n, Listen: &l, ServerName: s.ServerName}
		w.Sites = append(w.Sites, nginx.ProbeSite{Service: n, Request: reconciler.SiteRequest(ds, templates.ProbePath, 204)})
	}
	return w
}
