package main

import (
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, pruneCmd) }

func pruneCmd(g *globals) *cobra.Command {
	var f envFlags
	var dryRun bool
	var lockTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "prune --env NAME [--dry-run]",
		Short: "Remove images the env's services ran that no container uses, beyond the last keepImages of each service (and unused name proxy images)",
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
			rep, err := h.Retain(ctx, e.Environment, e.KeepImages, dryRun)
			rep.Print(g.stdout, dryRun)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be removed")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Minute, "how long to wait for an apply of the same env to finish")
	return cmd
}
