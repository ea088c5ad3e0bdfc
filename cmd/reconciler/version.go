package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { commands = append(commands, versionCmd) }

// versionCmd prints what --version prints. It touches nothing: no state
// dir, no engine, no git; bench/noop.sh measures it as the process floor.
func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(g.stdout, "reconciler version %s\n", version)
			return err
		},
	}
}
