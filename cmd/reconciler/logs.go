package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func init() { commands = append(commands, logsCmd) }

func logsCmd(g *globals) *cobra.Command {
	var f envFlags
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs --env NAME SERVICE [--follow] [--tail N]",
		Short: "Print the output of a service's live color (the one nginx sends traffic to)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			service := args[0]
			_, e, err := loadEnv(ctx, f)
			if err != nil {
				// Like status: usable from outside the deployment repo.
				g.log.Debug("desired state unavailable; using the default confDir", zap.Error(err))
			}
			e = orDefault(e, f.env)
			h, err := openHost(ctx, g, e)
			if err != nil {
				return err
			}
			scope, err := h.EnvScope(e)
			if err != nil {
				return err
			}
			scope.Images = nil // no image is compared
			o, err := h.Observe(ctx, scope)
			if err != nil {
				return err
			}
			c := o.Live(service)
			if c == nil {
				return fmt.Errorf("service %s of env %s has no container on this host", service, e.Environment)
			}
			g.log.Debug("logs of "+c.Name, zap.String("color", string(c.Color)))
			return h.Runtime.StreamLogs(ctx, c.Name, tail, follow, g.stdout, g.stderr)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	cmd.Flags().IntVar(&tail, "tail", 0, "print only the last N lines first (0: all)")
	return cmd
}
