package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
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
			opts := host.ApplyOptions{
				ForwardOnly: forwardOnly, Start: start,
				Record: host.RecordOptions{MetricsFile: metricsFile, ResponseTimes: nginxP95},
				Planned: func(pl *host.Planned) {
					fmt.Fprint(g.stdout, pl.Plan.String())
					if line := pl.Plan.DurationLine(); line != "" {
						fmt.Fprintln(g.stdout, line)
					}
				},
				Notify: func(targets []state.Notify) host.Notifier {
					return notify.New(targets, g.log.Named("notify")).WithMailer(awscloud.Mailer{Loader: g.aws})
				},
			}
			opts.Cloud = cloud{awscloud.Cloud{Loader: g.aws}}
			if !cf.skip {
				c, err := cf.checker(ctx, g, h, e)
				if err != nil {
					return err
				}
				opts.Checks = c
			}
			out, err := h.Apply(ctx, src, e, opts)
			if out.BackedUp != "" {
				fmt.Fprintf(g.stdout, "\nbacked up to %s\n", out.BackedUp)
			}
			if err != nil {
				if out.Planned != nil {
					g.log.Error("apply failed", zap.String("env", e.Environment), zap.String("commit", src.Hash), zap.Duration("after", time.Since(start).Round(time.Millisecond)))
				}
				return err
			}
			printLines(g, out.SiteChecks)
			printRecords(g, out.Records)
			printDrains(g, out.Drained)
			for _, w := range out.Warnings {
				fmt.Fprintf(g.stdout, "\nwarning: %s\n", w)
			}
			if out.InSync {
				return nil
			}
			fmt.Fprintf(g.stdout, "\nconverged %s at %s in %s\n", e.Environment, state.ShortHash(src.Hash), time.Since(start).Round(time.Millisecond))
			if len(out.Pruned.Removed) > 0 {
				out.Pruned.Print(g.stdout, false)
			}
			return nil
		},
	}
	f.register(cmd)
	cf.register(cmd, true)
	cmd.Flags().BoolVar(&forwardOnly, "forward-only", false, "refuse a commit that does not contain the commits the env's containers run (an old deploy re-run)")
	cmd.Flags().StringVar(&metricsFile, "metrics-file", "", "after a deploy, replace this file with its metrics in the Prometheus text format (node_exporter textfile collector: a .prom file in its directory)")
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", 10*time.Minute, "how long to wait for another apply of the same env to finish")
	return oneShot(cmd)
}

// printRecords lists the Route 53 record set changes an apply made, read
// back from Route 53.
func printRecords(g *globals, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(g.stdout, "\nroute53 records changed and read back in step:\n")
	for _, l := range lines {
		fmt.Fprintf(g.stdout, "    %s\n", l)
	}
}

// printDrains says how each drain ended: idle, or at its deadline with the
// streams it cut.
func printDrains(g *globals, drains []reconciler.Drained) {
	var lines []string
	for _, d := range drains {
		if d.Idle {
			lines = append(lines, fmt.Sprintf("drained %s: idle after %s", d.Target, d.Waited.Round(time.Millisecond)))
		} else {
			lines = append(lines, fmt.Sprintf("drained %s: deadline after %s, %d stream(s) cut", d.Target, d.Waited.Round(time.Millisecond), d.Cut))
		}
	}
	printLines(g, lines)
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
