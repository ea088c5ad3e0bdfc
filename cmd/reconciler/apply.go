package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/reconciler/nginx"
	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, applyCmd) }

func applyCmd(g *globals) *cobra.Command {
	var f envFlags
	var lockTimeout time.Duration
	var cf checkFlags
	var forwardOnly bool
	var metricsFile string
	cmd := &cobra.Command{
		Use:   "apply --env NAME [--repo PATH|URL] [--ref REV] [--lock-timeout 10m] [--metrics-file PATH]",
		Short: "Converge the host to the desired state, blue-green (exit 0 converged, 1 failed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			// Bad input fails here, before the lock and before any change.
			src, e, err := loadEnv(ctx, f)
			if err != nil {
				return host.ListErrors(err)
			}
			h, unlock, err := lockedHost(ctx, g, e, "reconciler apply --env "+f.env, lockTimeout)
			if err != nil {
				return err
			}
			defer unlock()
			var opts host.DeployOptions
			if !cf.skip {
				c, err := cf.checker(ctx, g, h, e)
				if err != nil {
					return err
				}
				opts.Checks = c
			}
			// Every attempt from here on is a deploy attempt: it goes into the
			// history, as the agent's do, and into the metrics file.
			record := func(pl *host.Planned, res host.Result, err error) {
				_, rerr := h.RecordApply(f.env, src, pl, start, res, err, host.RecordOptions{MetricsFile: metricsFile, ResponseTimes: nginxP95})
				if rerr != nil {
					g.log.Warn("deploy not fully recorded", zap.Error(rerr))
				}
			}
			pl, err := h.Plan(ctx, src, e)
			if err != nil {
				record(nil, host.Result{}, err)
				// A failed host check (engine, nginx, AWS credentials)
				// explains a failed plan better than the plan's own error.
				if opts.Checks != nil {
					if herr := opts.Checks.Host(ctx).Err(); herr != nil {
						return fmt.Errorf("%w; nothing was changed", host.ListErrors(herr))
					}
				}
				return host.ListErrors(err)
			}
			if forwardOnly {
				if err := host.CheckForward(src, pl.Observed); err != nil {
					return err
				}
			}
			p := pl.Plan
			fmt.Fprint(g.stdout, p.String())
			if p.Empty() {
				// In sync: nothing to check, nothing to back up; the sites'
				// health checks still follow the env (route53.healthChecks).
				lines, err := h.SyncSiteChecks(ctx, e, cloud{awscloud.Cloud{Loader: g.aws}})
				printLines(g, lines)
				if err != nil {
					fmt.Fprintf(g.stdout, "\nwarning: %s\n", err)
				}
				return nil
			}
			n := notify.New(pl.Desired.Notify, g.log.Named("notify")).WithMailer(awscloud.Mailer{Loader: g.aws})
			defer n.Close(15 * time.Second)
			opts.Notifier, opts.Cloud = n, cloud{awscloud.Cloud{Loader: g.aws}}
			res, err := h.Deploy(ctx, pl, opts)
			record(pl, res, err)
			if res.BackedUp != "" {
				fmt.Fprintf(g.stdout, "\nbacked up to %s\n", res.BackedUp)
			}
			if err != nil {
				g.log.Error("apply failed", zap.String("env", p.Env), zap.String("commit", p.Commit), zap.Duration("after", time.Since(start).Round(time.Millisecond)))
				return err
			}
			printLines(g, res.SiteChecks)
			for _, w := range res.Warnings {
				fmt.Fprintf(g.stdout, "\nwarning: %s\n", w)
			}
			fmt.Fprintf(g.stdout, "\nconverged %s at %s in %s\n", p.Env, state.ShortHash(p.Commit), time.Since(start).Round(time.Millisecond))
			if len(res.Pruned.Removed) > 0 {
				res.Pruned.Print(g.stdout, false)
			}
			return nil
		},
	}
	f.register(cmd)
	cf.register(cmd, true)
	cmd.Flags().BoolVar(&forwardOnly, "forward-only", false, "refuse a commit that does not contain the commits the env's containers run (an old deploy re-run)")
	cmd.Flags().StringVar(&metricsFile, "metrics-file", "", "after a deploy, replace this file with its metrics in the Prometheus text format (node_exporter textfile collector: a .prom file in its directory)")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Minute, "how long to wait for another apply of the same env to finish")
	return cmd
}

// printLines prints lines under a blank line; nothing for none.
func printLines(g *globals, lines []string) {
	if len(lines) > 0 {
		fmt.Fprintf(g.stdout, "\n%s\n", strings.Join(lines, "\n"))
	}
}

// nginxP95 is host.ResponseTimes from nginx's access logs.
func nginxP95(path string, from, to time.Time) (time.Duration, error) {
	l, err := nginx.ResponseTimes(path, from, to)
	return l.P95, err
}
