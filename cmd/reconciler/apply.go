package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
)

func init() { commands = append(commands, applyCmd) }

func applyCmd(g *globals) *cobra.Command {
	var f envFlags
	var lockTimeout time.Duration
	var cf checkFlags
	cmd := &cobra.Command{
		Use:   "apply --env NAME [--repo PATH|URL] [--ref REV] [--lock-timeout 10m]",
		Short: "Converge the host to the desired state, blue-green (exit 0 converged, 1 failed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			// Bad input fails here, before the lock and before any change.
			c, e, err := loadEnv(ctx, f)
			if err != nil {
				return listErrors(err)
			}
			h, unlock, err := lockedHost(ctx, g, e, "reconciler apply --env "+f.env, lockTimeout)
			if err != nil {
				return err
			}
			defer unlock()
			var checks *preflight.Checker
			if !cf.skip {
				if checks, err = cf.checker(ctx, g, h, e); err != nil {
					return err
				}
			}
			d, o, p, err := h.plan(ctx, g, c, e)
			if err != nil {
				// A failed host check (engine, nginx, AWS credentials)
				// explains a failed plan better than the plan's own error.
				if checks != nil {
					if herr := checks.Host(ctx).Err(); herr != nil {
						return fmt.Errorf("%w; nothing was changed", listErrors(herr))
					}
				}
				return listErrors(err)
			}
			fmt.Fprint(g.stdout, p.String())
			if p.Empty() {
				return nil // in sync: nothing to check, nothing to back up
			}
			n := notify.New(d.Notify, g.log.Named("notify"))
			defer n.Close(15 * time.Second)
			ap := h.applier(g, n)
			backedUp, res, pruned, err := deploy(ctx, g, h, e, d, o, p, checks, ap)
			if backedUp != "" {
				fmt.Fprintf(g.stdout, "\nbacked up to %s\n", backedUp)
			}
			if err != nil {
				g.log.Error("apply failed", zap.String("env", p.Env), zap.String("commit", p.Commit), zap.Duration("after", time.Since(start).Round(time.Millisecond)))
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(g.stdout, "\nwarning: %s\n", w)
			}
			fmt.Fprintf(g.stdout, "\nconverged %s at %s in %s\n", p.Env, shortCommit(p.Commit), time.Since(start).Round(time.Millisecond))
			if len(pruned.Removed) > 0 {
				pruned.print(g.stdout, false)
			}
			return nil
		},
	}
	f.register(cmd)
	cf.register(cmd, true)
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Minute, "how long to wait for another apply of the same env to finish")
	return cmd
}
