package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/state"
)

func init() { commands = append(commands, initCmd) }

func initCmd(g *globals) *cobra.Command {
	var env, repo string
	cmd := &cobra.Command{
		Use:   "init --env NAME [--repo PATH]",
		Short: "Write a commented starter envs/NAME.yaml (one HTTP service, one worker); never overwrites",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := filepath.Join(repo, filepath.FromSlash(state.EnvPath(env)))
			if err := writeNew(path, []byte(state.Starter(env))); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s: edit it, commit it, then run reconciler validate --env %s\n", path, env)
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "environment name: writes envs/NAME.yaml (required)")
	cmd.Flags().StringVar(&repo, "repo", ".", "the repository's working tree")
	_ = cmd.MarkFlagRequired("env")
	cmd.PreRunE = func(*cobra.Command, []string) error { return state.CheckEnvName(env) }
	return cmd
}

// writeNew creates path with data, refusing to replace a file that
// exists. O_EXCL, not atomicfile: the point is never to overwrite, and the
// file is new, so there is no old content to keep whole.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("init: %s exists; not overwritten (remove it, or pick another --env)", path)
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	return nil
}
