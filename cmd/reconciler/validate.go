package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, validateCmd) }

func validateCmd(g *globals) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "validate --env NAME [--repo PATH|URL] [--ref REV]",
		Short: "Check envs/NAME.yaml and every file it references at a commit (exit 0 valid, 1 invalid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, e, err := loadEnv(cmd.Context(), f)
			if err != nil {
				return &exitError{code: exitFailed, err: host.ListErrors(err)}
			}
			fmt.Fprintf(g.stdout, "envs/%s.yaml at %s: valid (%d services)\n", f.env, state.ShortHash(c.Hash), len(e.Services))
			return nil
		},
	}
	f.register(cmd)
	return oneShot(cmd)
}
