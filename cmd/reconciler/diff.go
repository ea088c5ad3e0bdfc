package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/host"
)

func init() { commands = append(commands, diffCmd) }

func diffCmd(g *globals) *cobra.Command {
	var f envFlags
	var output, base string
	cmd := &cobra.Command{
		Use:   "diff --env NAME [--repo PATH|URL] [--ref REV] [--base REV] [-o text|json]",
		Short: "Show what apply would change (exit 0 in sync, 2 changes, 1 error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o: want text or json, got %q", output)
			}
			var p *reconciler.Plan
			var err error
			if base != "" {
				p, err = diffBase(cmd.Context(), g, f, base, output)
			} else {
				var pl *host.Planned
				if pl, err = plan(cmd.Context(), g, f); err == nil {
					p = pl.Plan
				}
			}
			if err != nil {
				return host.ListErrors(err)
			}
			if err := printPlan(g, p, output); err != nil {
				return err
			}
			if !p.Empty() {
				return &exitError{code: exitChanges}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&base, "base", "", "compare with the desired state at this revision instead of the host (a PR preview; reads no host and no secret)")
	return oneShot(cmd)
}

// planJSON is the -o json form of a plan.
type planJSON struct {
	Env     string              `json:"env"`
	Commit  string              `json:"commit"`
	InSync  bool                `json:"inSync"`
	Changes []reconciler.Change `json:"changes"`
	// WorstCase is the plan's worst-case duration (Plan.Duration), as
	// text ("9m30s") and in seconds; pulls are not counted.
	WorstCase        string  `json:"worstCase"`
	WorstCaseSeconds float64 `json:"worstCaseSeconds"`
}

func printPlan(g *globals, p *reconciler.Plan, output string) error {
	if output == "json" {
		changes := p.Changes
		if changes == nil {
			changes = []reconciler.Change{}
		}
		d := p.Duration()
		b, err := json.MarshalIndent(planJSON{Env: p.Env, Commit: p.Commit, InSync: p.Empty(), Changes: changes,
			WorstCase: reconciler.FormatDuration(d), WorstCaseSeconds: d.Seconds()}, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(g.stdout, string(b))
		return nil
	}
	fmt.Fprint(g.stdout, p.String())
	if line := p.DurationLine(); line != "" {
		fmt.Fprintln(g.stdout, line)
	}
	return nil
}
