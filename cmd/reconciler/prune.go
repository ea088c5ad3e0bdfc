package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, pruneCmd) }

func pruneCmd(g *globals) *cobra.Command {
	var f envFlags
	var dryRun, previous bool
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "prune --env NAME [--dry-run] [--previous]",
		Short: "Remove images the env's services ran that no container uses, beyond the last keepImages of each service (and unused name proxy images); with --previous, first the previous release kept stopped for a rollback",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, e, err := loadEnv(ctx, f)
			if err != nil {
				g.log.Warn("desired state unavailable; keeping the default number of images", zap.Int("keepImages", state.DefaultKeepImages), zap.Error(err))
			}
			e = orDefault(e, f.env)
			h, unlock, err := lockedHost(ctx, g, e, "reconciler prune --env "+f.env, lockTimeout)
			if err != nil {
				return err
			}
			defer unlock()
			scope, err := h.EnvScope(e)
			if err != nil {
				return err
			}
			if previous {
				removed, err := h.RemoveKept(ctx, scope, dryRun)
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				for _, c := range removed {
					fmt.Fprintf(g.stdout, "%s previous release %s (%s, commit %s)\n", verb, c.Name, c.Spec.Image, state.ShortHash(c.Commit))
				}
				if err != nil {
					return err
				}
			} else {
				kept, err := h.Kept(ctx, scope)
				if err != nil {
					return err
				}
				for _, c := range kept {
					fmt.Fprintf(g.stdout, "kept previous release %s (%s, commit %s) for reconciler rollback; --previous removes it\n", c.Name, c.Spec.Image, state.ShortHash(c.Commit))
				}
			}
			rep, err := h.Retain(ctx, e.Environment, e.KeepImages, dryRun)
			rep.Print(g.stdout, dryRun)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	cmd.Flags().BoolVar(&previous, "previous", false, "also remove the previous release kept stopped for reconciler rollback (its images become unused)")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Minute, "how long to wait for an apply of the same env to finish")
	return cmd
}
