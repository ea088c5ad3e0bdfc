package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/host"
	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

func init() { commands = append(commands, rollbackCmd, resumeCmd) }

func rollbackCmd(g *globals) *cobra.Command {
	var f envFlags
	var lockTimeout time.Duration
	var branch, authorFlag string
	cmd := &cobra.Command{
		Use:   "rollback --env NAME [--repo PATH|URL] [--ref REV] [--branch NAME [--author \"N <e>\"]]",
		Short: "Serve the previous release again, in seconds: its kept containers start, pass health, take the traffic back; the agent pauses until the revert lands",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			// --branch is checked before anything changes on the host.
			var repo *gitrepo.Commit
			var author gitrepo.Author
			if branch != "" {
				if gitrepo.IsURL(f.repo) {
					return fmt.Errorf("--branch: the revert is committed to a local repository; --repo is the URL %s", gitrepo.Redact(f.repo))
				}
				c, err := gitrepo.Open(ctx, f.repo, f.ref)
				if err != nil {
					return err
				}
				if err := c.CheckBranch(branch); err != nil {
					return fmt.Errorf("--branch: %w; nothing was changed", err)
				}
				if author, err = authorFor(c, authorFlag); err != nil {
					return fmt.Errorf("%w; nothing was changed", err)
				}
				repo = c
			}
			src, e, err := loadEnv(ctx, f)
			if err != nil {
				return host.ListErrors(err)
			}
			h, unlock, err := lockedHost(ctx, g, e, "reconciler rollback --env "+f.env, lockTimeout)
			if err != nil {
				return err
			}
			defer unlock()
			opts := host.RollbackOptions{
				Planned: func(pl *host.Planned) { fmt.Fprint(g.stdout, pl.Plan.String()) },
				Notify: func(targets []state.Notify) host.Notifier {
					return notify.New(targets, g.log.Named("notify")).WithMailer(awscloud.Mailer{Loader: g.aws})
				},
			}
			opts.Cloud = cloud{awscloud.Cloud{Loader: g.aws}}
			out, err := h.Rollback(ctx, src, e, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "\nrolled back %s: %s serves again (verified through nginx) in %s\n", e.Environment, state.ShortHash(out.Previous), time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(g.stdout, "the agent deploys nothing of %s until another commit lands on the branch or `reconciler resume --env %s` runs.\n", state.ShortHash(out.Release), e.Environment)
			if repo == nil {
				fmt.Fprintf(g.stdout, "to put git in charge again, revert the release on the branch:\n\n    git revert --no-edit %s\n", out.Release)
				return nil
			}
			revert, err := commitRevert(repo, branch, out.Release, e.Environment, author)
			if err != nil {
				return fmt.Errorf("the rollback stands, but --branch: %w\nrevert the release by hand: git revert --no-edit %s", err, out.Release)
			}
			fmt.Fprintf(g.stdout, "committed the revert of %s on branch %s at %s\nnext: git push origin %s, then open a PR; once it merges, the agent deploys again\n",
				state.ShortHash(out.Release), branch, state.ShortHash(revert), branch)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&lockTimeout, "lock-timeout", time.Minute, "how long to wait for an apply of the same env to finish")
	cmd.Flags().StringVar(&branch, "branch", "", "commit the matching git revert on this new branch of the local --repo (made on --ref; nothing else in the repository changes)")
	cmd.Flags().StringVar(&authorFlag, "author", "", "with --branch: commit author \"Name <email>\" (default: GIT_AUTHOR_NAME/GIT_AUTHOR_EMAIL, then git config)")
	return cmd
}

// commitRevert commits, on a new branch made on repo, the revert of the
// release commit: the files it changed, as they were before it.
func commitRevert(repo *gitrepo.Commit, branch, release, env string, author gitrepo.Author) (string, error) {
	files, err := repo.RevertFiles(release)
	if err != nil {
		return "", err
	}
	subject, err := repo.Subject(release)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Revert %q\n\nThis reverts commit %s.\n\nreconciler rollback --env %s served the previous release again;\nthis commit puts git in step with the host.\n", subject, release, env)
	return repo.Branch(branch, files, msg, author, time.Now())
}

func resumeCmd(g *globals) *cobra.Command {
	var f envFlags
	cmd := &cobra.Command{
		Use:   "resume --env NAME",
		Short: "Lift the pause a rollback set: the agent deploys the branch's tip again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := state.CheckEnvName(f.env); err != nil {
				return fmt.Errorf("--env: %w", err)
			}
			dir, err := statedir.Open(g.stateDir)
			if err != nil {
				return err
			}
			p, err := dir.Unpause(f.env)
			if err != nil {
				return err
			}
			if p == nil {
				fmt.Fprintf(g.stdout, "%s is not paused\n", f.env)
				return nil
			}
			fmt.Fprintf(g.stdout, "resumed %s: the agent deploys the branch's tip again (the rollback of %s at %s is lifted)\n", f.env, state.ShortHash(p.Release), p.At.Format(time.RFC3339))
			return nil
		},
	}
	f.register(cmd) // --repo and --ref are accepted and not read
	return cmd
}
