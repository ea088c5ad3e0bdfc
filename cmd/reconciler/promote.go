package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

func init() { commands = append(commands, promoteCmd) }

// promoteFlags are promote's flags.
type promoteFlags struct {
	from, to, repo, ref, author string
	services                    []string
	dryRun                      bool
}

func promoteCmd(g *globals) *cobra.Command {
	var f promoteFlags
	cmd := &cobra.Command{
		Use:   "promote --from ENV --to ENV [--service NAME]... [--repo PATH] [--ref REV]",
		Short: "Copy image references from one env file to another and commit them on a new branch, ready for a PR",
		Long: `promote copies the image references (tags or digests) of the services found
in both envs/FROM.yaml and envs/TO.yaml, and of the migrations job, from FROM to
TO as they stand at --ref. Only the image values change: comments and layout stay.
The result is validated, then committed on a new branch
promote/FROM-to-TO-<commit> without touching the working tree or the current
branch. Push the branch and open a PR: merging it deploys.

Exit 0 when a branch was made or there is nothing to promote, 1 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return promote(cmd.Context(), g.stdout, f)
		},
	}
	cmd.Flags().StringVar(&f.from, "from", "", "environment to copy images from (required)")
	cmd.Flags().StringVar(&f.to, "to", "", "environment to copy images to (required)")
	cmd.Flags().StringSliceVar(&f.services, "service", nil, "promote only this service (repeatable; \"migrations\" names the migrations job)")
	cmd.Flags().StringVar(&f.repo, "repo", ".", "local git repository")
	cmd.Flags().StringVar(&f.ref, "ref", "", "revision to read both env files at and to branch from (default HEAD)")
	cmd.Flags().StringVar(&f.author, "author", "", "commit author \"Name <email>\" (default: GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL, then git config)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print what would change; make no branch")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func promote(ctx context.Context, out io.Writer, f promoteFlags) error {
	if gitrepo.IsURL(f.repo) {
		return fmt.Errorf("--repo: promote commits a branch and needs a local repository, got the URL %s", gitrepo.Redact(f.repo))
	}
	c, err := gitrepo.Open(ctx, f.repo, f.ref)
	if err != nil {
		return err
	}
	pr, err := state.Promote(c.FS, f.from, f.to, f.services)
	if err != nil {
		return host.ListErrors(err)
	}
	short := c.Hash[:7]
	fromPath := state.EnvPath(f.from)
	if len(pr.LeftOut) > 0 {
		fmt.Fprintf(out, "only in %s, left out: %s\n", fromPath, strings.Join(pr.LeftOut, ", "))
	}
	if len(pr.Set) == 0 {
		fmt.Fprintf(out, "nothing to promote: the images of %s already match %s at %s\n", pr.Path, fromPath, short)
		return nil
	}
	fmt.Fprintf(out, "promote %s → %s at %s:\n%s\n%s", f.from, f.to, short, pr.Summary, pr.Diff)
	if f.dryRun {
		fmt.Fprintln(out, "\n--dry-run: no branch made")
		return nil
	}

	author, err := authorFor(c, f.author)
	if err != nil {
		return err
	}
	branch := fmt.Sprintf("promote/%s-to-%s-%s", f.from, f.to, short)
	msg := fmt.Sprintf("promote %s → %s: %s\n\nImages copied from %s at %s:\n%s",
		f.from, f.to, strings.Join(state.SortedKeys(pr.Set), ", "), fromPath, c.Hash, pr.Summary)
	h, err := c.Branch(branch, map[string][]byte{pr.Path: pr.Data}, msg, author, time.Now())
	if errors.Is(err, gitrepo.ErrBranchExists) {
		return fmt.Errorf("branch %s exists already: this commit was promoted before (delete the branch to redo it)", branch)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nbranch %s at %s\nnext: git push origin %s, then open a PR into main\n", branch, state.ShortHash(h), branch)
	return nil
}

func authorFor(c *gitrepo.Commit, flag string) (gitrepo.Author, error) {
	if flag != "" {
		a, err := gitrepo.ParseAuthor(flag)
		if err != nil {
			return a, fmt.Errorf("--author: %w", err)
		}
		return a, nil
	}
	return c.DefaultAuthor()
}
