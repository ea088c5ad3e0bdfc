package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/state"
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
				e = &state.Env{Environment: f.env}
				e.Default()
			}
			h, err := openHost(ctx, g, e)
			if err != nil {
				return err
			}
			snap, err := h.rt.Observe(ctx, e.Environment, nil)
			if err != nil {
				return err
			}
			sites, err := h.edge.Observe(ctx, e.Environment, e.Nginx.ConfDir)
			if err != nil {
				return err
			}
			c := liveContainer(service, snap.Containers, sites)
			if c == nil {
				return fmt.Errorf("service %s of env %s has no container on this host", service, e.Environment)
			}
			g.log.Debug("logs of "+c.Name, zap.String("color", string(c.Color)))
			return h.rt.StreamLogs(ctx, c.Name, tail, follow, g.stdout, g.stderr)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until interrupted")
	cmd.Flags().IntVar(&tail, "tail", 0, "print only the last N lines first (0: all)")
	return cmd
}

// liveContainer is the service's container that serves: the color nginx's
// marker names when that container exists, else the running one (the older
// when both run), else any.
func liveContainer(service string, ours []state.Container, sites []state.Site) *state.Container {
	byColor := map[state.Color]*state.Container{}
	for i := range ours {
		if c := &ours[i]; c.Service == service {
			byColor[c.Color] = c
		}
	}
	for _, s := range sites {
		if s.Service == service && byColor[s.Live] != nil {
			return byColor[s.Live]
		}
	}
	b, gr := byColor[state.Blue], byColor[state.Green]
	switch {
	case b != nil && gr != nil:
		if b.Running() != gr.Running() {
			if b.Running() {
				return b
			}
			return gr
		}
		if gr.StartedAt.Before(b.StartedAt) {
			return gr
		}
		return b
	case b != nil:
		return b
	}
	return gr
}
