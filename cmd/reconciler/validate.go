package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
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
				return &exitError{code: exitFailed, err: listErrors(err)}
			}
			fmt.Fprintf(g.stdout, "envs/%s.yaml at %s: valid (%d services)\n", f.env, c.Hash[:12], len(e.Services))
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// listErrors puts each joined error on its own line under a count.
func listErrors(err error) error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) || len(j.Unwrap()) < 2 {
		return err
	}
	return fmt.Errorf("%d problems:\n%w", len(j.Unwrap()), err)
}
