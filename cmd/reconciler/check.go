package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/backup"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, checkCmd) }

func checkCmd(g *globals) *cobra.Command {
	var f envFlags
	var cf checkFlags
	cmd := &cobra.Command{
		Use:   "check --env NAME [--repo PATH|URL] [--ref REV]",
		Short: "Run the pre-deploy checks alone: engine, nginx test, AWS credentials, secrets, images, memory, disk (exit 0 all pass, 1 a failure)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			commit, e, err := loadEnv(ctx, f)
			if err != nil {
				return listErrors(err)
			}
			h, err := openHost(ctx, g, e)
			if err != nil {
				return err
			}
			c, err := cf.checker(ctx, g, h, e)
			if err != nil {
				return err
			}
			report := c.Host(ctx)
			if report.Err() == nil {
				d, _, p, err := h.plan(ctx, g, commit, e)
				if err != nil {
					report = append(report, preflight.Result{Name: "secrets and plan", Err: err})
				} else {
					report = append(report, preflight.Result{Name: "secrets and plan", Detail: fmt.Sprintf("%d secret(s) resolved; %d change(s) to apply", len(e.SecretRefs()), len(p.Changes))})
					report = append(report, c.Plan(ctx, p)...)
					if d.Migrations != nil && len(d.Migrations.DryRunCommand) > 0 {
						report = append(report, migrationsDryRun(ctx, g, h, d, p))
					}
				}
			}
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
func (cf *checkFlags) checker(ctx context.Context, g *globals, h *host, e *state.Env) (*preflight.Checker, error) {
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
	}
	if len(awsSchemes(e.SecretRefs())) > 0 || e.Backup != nil && e.Backup.S3 != "" {
		cfg, err := g.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		c.Identity = awscloud.NewIdentity(cfg)
	}
	return c, nil
}

// engine adapts the Docker runtime to preflight.Engine.
type engine struct{ rt *docker.Runtime }

func (a engine) Info(ctx context.Context) (string, int64, string, error) {
	i, err := a.rt.Info(ctx)
	return i.Version, i.MemTotal, i.RootDir, err
}

func (a engine) RunningMemory(ctx context.Context) (map[string]int64, error) {
	return a.rt.RunningMemory(ctx)
}

// takeBackup backs up what p is about to change (see package backup), from
// o, the snapshot p was planned from, and says where it went.
func takeBackup(ctx context.Context, g *globals, o *state.Observed, d *state.Desired, e *state.Env, p *reconciler.Plan) (string, error) {
	var up backup.Uploader
	if e.Backup != nil && e.Backup.S3 != "" {
		cfg, err := g.awsConfig(ctx)
		if err != nil {
			return "", fmt.Errorf("backup: %w", err)
		}
		s3, err := awscloud.NewS3(cfg, e.Backup.S3)
		if err != nil {
			return "", err
		}
		up = s3
	}
	res, err := backup.Take(ctx, g.stateDir, o, d.Env, p.Commit, d.Nginx.ConfDir, e.BackupKeep(), up, time.Now())
	if err != nil {
		return "", fmt.Errorf("%w; nothing was changed", err)
	}
	where := res.Dir
	if res.URL != "" {
		where += " and " + res.URL
	}
	return where, nil
}

// migrationsDryRun runs migrations.dryRun.command as a job, with the
// migrations' image and settings, when the plan runs the migrations.
func migrationsDryRun(ctx context.Context, g *globals, h *host, d *state.Desired, p *reconciler.Plan) preflight.Result {
	const name = "migrations dry-run"
	runs := slices.ContainsFunc(p.Changes, func(c reconciler.Change) bool { return c.Kind == reconciler.Migrate })
	if !runs {
		return preflight.Result{Name: name, Detail: "skipped: the migrations do not run at this commit"}
	}
	m := d.Migrations
	spec := m.Spec
	spec.Command = m.DryRunCommand
	job := reconciler.ContainerSpec{
		Name: d.Env + "-migrations-dry-run", Spec: spec, Network: m.Network, Timeout: m.Timeout,
		Labels: map[string]string{state.LabelEnv: d.Env, state.LabelService: "migrations", state.LabelCommit: d.Commit},
	}
	jctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	var out bytes.Buffer
	code, err := h.rt.RunJob(jctx, job, &out)
	tail := strings.TrimSpace(lastLines(out.String(), 10))
	switch {
	case err != nil:
		return preflight.Result{Name: name, Err: fmt.Errorf("%q: %w", m.DryRunCommand, err)}
	case code != 0:
		return preflight.Result{Name: name, Err: fmt.Errorf("%q exited with code %d; its output:\n%s", m.DryRunCommand, code, tail)}
	}
	g.log.Debug("migrations dry-run passed", zap.String("output", tail))
	return preflight.Result{Name: name, Detail: fmt.Sprintf("%q exited 0", m.DryRunCommand)}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
