package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/internal/termtext"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, historyCmd) }

func historyCmd(g *globals) *cobra.Command {
	var env, output string
	var limit int
	var stats bool
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "history --env NAME [-o text|json] [--limit N] [--stats [--since 720h]]",
		Short: "List the deploy attempts of an env (the agent's and apply's), newest last, or with --stats their success and rollback rates (safe while the agent runs)",
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
			if stats {
				return printStats(g, env, recs, since, output == "json")
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
			// The author, the message and the error come from outside
			// (a commit, a program's output): control characters are
			// shown escaped, so that they cannot rewrite the terminal.
			for _, r := range recs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Start.UTC().Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Millisecond),
					termtext.Escape(dash(r.Trigger)), r.Result, termtext.Escape(state.ShortHash(r.Commit)), termtext.Escape(dash(r.Author)), termtext.Escape(dash(r.Message)))
				if r.Error != "" {
					first, _, _ := strings.Cut(r.Error, "\n")
					fmt.Fprintf(tw, "\t\t\t\t\terror: %s\t\n", termtext.Escape(first))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "environment name (required)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().IntVar(&limit, "limit", 0, "show only the last N attempts (0: all)")
	cmd.Flags().BoolVar(&stats, "stats", false, "print the success rate and the rollback rate of the deploys instead of the list")
	cmd.Flags().DurationVar(&since, "since", 720*time.Hour, "with --stats: the window, back from now (0: the whole history)")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

// stats is the JSON form of history --stats.
type stats struct {
	Env          string    `json:"env"`
	Since        time.Time `json:"since,omitzero"`
	Deploys      int       `json:"deploys"`
	Succeeded    int       `json:"succeeded"`
	Failed       int       `json:"failed"`
	RolledBack   int       `json:"rolledBack"`
	SuccessRate  float64   `json:"successRate"`
	RollbackRate float64   `json:"rollbackRate"`
}

func printStats(g *globals, env string, recs []history.Record, window time.Duration, asJSON bool) error {
	var from time.Time
	if window > 0 {
		from = time.Now().Add(-window).UTC().Truncate(time.Second)
	}
	s := history.Summarize(recs, from)
	out := stats{Env: env, Since: from, Deploys: s.Deploys, Succeeded: s.Succeeded, Failed: s.Failed, RolledBack: s.RolledBack,
		SuccessRate: s.SuccessRate(), RollbackRate: s.RollbackRate()}
	if asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(g.stdout, string(b))
		return nil
	}
	what := "the whole history"
	if window > 0 {
		what = fmt.Sprintf("the last %s (since %s)", window, from.Format(time.RFC3339))
	}
	fmt.Fprintf(g.stdout, "%s, %s: %d deploy(s), %d succeeded, %d failed, %d rolled back\n", env, what, s.Deploys, s.Succeeded, s.Failed, s.RolledBack)
	if s.Deploys == 0 {
		fmt.Fprintln(g.stdout, "no deploys in the window: no rates")
		return nil
	}
	fmt.Fprintf(g.stdout, "success rate   %6.2f%%   (the plan's target: > 99%%)\n", 100*s.SuccessRate())
	fmt.Fprintf(g.stdout, "rollback rate  %6.2f%%   (the plan's target: < 1%%)\n", 100*s.RollbackRate())
	return nil
}
