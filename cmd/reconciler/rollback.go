package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, rollbackCmd, resumeCmd) }

func rollbackCmd(g *globals) *cobra.Command {
	var f envFlags
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "rollback --env NAME [--repo PATH|URL] [--ref REV]",
		Short: "Serve the previous release again, in seconds: its kept containers start, pass health, take the traffic back; the agent pauses until the revert lands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			src, e, err := loadEnv(ctx, f)
			if err != nil {
				return host.ListErrors(err)
			}
			h, unlock, err := lockedHost(ctx, g, e, "reconciler rollback --env "+f.env, lockTimeout)
			if err != nil {
				return err
			}
			defer unlock()
			opts := host.RollbackOptions{
				Planned: func(pl *host.Planned) { fmt.Fprint(g.stdout, pl.Plan.String()) },
				Notify: func(targets []state.Notify) host.Notifier {
					return notify.New(targets, g.log.Named("notify")).WithMailer(awscloud.Mailer{Loader: g.aws})
				},
			}
			opts.Cloud = cloud{awscloud.Cloud{Loader: g.aws}}
			out, err := h.Rollback(ctx, src, e, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "\nrolled back %s: %s serves again (verified through nginx) in %s\n", e.Environment, state.ShortHash(out.Previous), time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(g.stdout, "the agent deploys nothing of %s until another commit lands on the branch or `reconciler resume --env %s` runs.\n", state.ShortHash(out.Release), e.Environment)
			fmt.Fprintf(g.stdout, "to put git in charge again, revert the release on the branch:\n\n    git revert --no-edit %s\n", out.Release)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", time.Minute, "how long to wait for an apply of the same env to finish")
	return cmd
}

func resumeCmd(g *globals) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "resume --env NAME",
		Short: "Lift the pause a rollback set: the agent deploys the branch's tip again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := state.CheckEnvName(f.env); err != nil {
				return fmt.Errorf("--env: %w", err)
			}
			dir, err := statedir.Open(g.stateDir)
			if err != nil {
				return err
			}
			p, err := dir.Unpause(f.env)
			if err != nil {
				return err
			}
			if p == nil {
				fmt.Fprintf(g.stdout, "%s is not paused\n", f.env)
				return nil
			}
			fmt.Fprintf(g.stdout, "resumed %s: the agent deploys the branch's tip again (the rollback of %s at %s is lifted)\n", f.env, state.ShortHash(p.Release), p.At.Format(time.RFC3339))
			return nil
		},
	}
	f.register(cmd) // --repo and --ref are accepted and not read
	return cmd
}
