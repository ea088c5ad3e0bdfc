package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, historyCmd) }

func historyCmd(g *globals) *cobra.Command {
	var env, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "history --env NAME [-o text|json] [--limit N]",
		Short: "List the agent's deploy attempts of an env, newest last (safe while the agent runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: want text or json, got %q", output)
			}
			recs, skipped, err := history.Read(statedir.HistoryPath(g.stateDir, env))
			if err != nil {
				return err
			}
			if skipped > 0 {
				g.log.Warn(fmt.Sprintf("skipped %d torn or unreadable line(s) of the history", skipped))
			}
			if limit > 0 && len(recs) > limit {
				recs = recs[len(recs)-limit:]
			}
			if output == "json" {
				if recs == nil {
					recs = []history.Record{}
				}
				b, err := json.MarshalIndent(recs, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, string(b))
				return nil
			}
			if len(recs) == 0 {
				fmt.Fprintf(g.stdout, "no deploy attempts of %s recorded in %s\n", env, g.stateDir)
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "START\tDURATION\tTRIGGER\tRESULT\tCOMMIT\tAUTHOR\tMESSAGE")
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Start.UTC().Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Millisecond),
					dash(r.Trigger), r.Result, state.ShortHash(r.Commit), dash(r.Author), dash(r.Message))
				if r.Error != "" {
					first, _, _ := strings.Cut(r.Error, "\n")
					fmt.Fprintf(tw, "\t\t\t\t\terror: %s\t\n", first)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "environment name (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVar(&limit, "limit", 0, "show only the last N attempts (0: all)")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}
