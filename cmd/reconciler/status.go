package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/termtext"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, statusCmd) }

func statusCmd(g *globals) *cobra.Command {
	var f envFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status --env NAME [--repo PATH|URL] [--ref REV] [-o text|json]",
		Short: "Show each service's desired and running image, color, health, commit and since when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: want text or json, got %q", output)
			}
			ctx := cmd.Context()
			_, e, err := loadEnv(ctx, f)
			if err != nil {
				// Status is for looking at a host, often from outside the
				// deployment repo: show what runs without the desired state.
				g.log.Warn("desired state unavailable; showing what runs on the host (nginx files in the default confDir)", zap.Error(err))
			}
			e = orDefault(e, f.env)
			h, err := openHost(ctx, g, e)
			if err != nil {
				return err
			}
			st, err := h.Status(ctx, e)
			if err != nil {
				return err
			}
			for _, w := range st.Warnings {
				g.log.Warn(w)
			}
			if output == "json" {
				b, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, string(b))
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tCOLOR\tSTATE\tHEALTH\tMEMORY\tRUNNING IMAGE\tDESIRED IMAGE\tCOMMIT\tSINCE")
			for _, r := range st.Services {
				since := "-"
				if !r.Since.IsZero() {
					since = r.Since.UTC().Format(time.RFC3339) + " (" + time.Since(r.Since).Round(time.Second).String() + " ago)"
				}
				desired := r.DesiredImage
				if desired == r.RunningImage {
					desired = "(same)"
				}
				mem := "-"
				if r.MemoryLimitBytes > 0 {
					mem = state.HumanBytes(r.MemoryBytes) + " / " + state.HumanBytes(r.MemoryLimitBytes)
				}
				// What the engine and the labels say is shown escaped.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Service, dash(string(r.Color)), termtext.Escape(r.State), termtext.Escape(r.Health), mem,
					termtext.Escape(dash(r.RunningImage)), termtext.Escape(dash(desired)), termtext.Escape(dash(state.ShortHash(r.Commit))), since)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, r := range st.Services {
				if r.Marker == "" {
					continue
				}
				line := fmt.Sprintf("route %s: nginx routes to %s, marker says %s", r.Service, termtext.Escape(dash(r.Routed)), r.Marker)
				if r.RouteMismatch {
					line += " (MISMATCH: nginx's workers do not follow the marker; see reconciler check)"
				}
				fmt.Fprintln(g.stdout, line)
			}
			for _, n := range st.Names {
				fmt.Fprintf(g.stdout, "name %s: %s (%s) → %s\n", n.Service, termtext.Escape(n.Proxy), termtext.Escape(n.State), dash(string(n.Color)))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return oneShot(cmd)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
