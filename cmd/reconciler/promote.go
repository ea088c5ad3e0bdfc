package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
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
	if f.from == f.to {
		return fmt.Errorf("--from and --to: want two environments, got %q twice", f.from)
	}
	if gitrepo.IsURL(f.repo) {
		return fmt.Errorf("--repo: promote commits a branch and needs a local repository, got the URL %s", f.repo)
	}
	c, err := gitrepo.Open(ctx, f.repo, f.ref)
	if err != nil {
		return err
	}
	// Both files must be valid as they stand: promoting from a broken file
	// would hide where the problem came from.
	for _, env := range []string{f.from, f.to} {
		if _, err := state.Load(c.FS, env); err != nil {
			return host.ListErrors(err)
		}
	}
	fromPath, toPath := state.EnvPath(f.from), state.EnvPath(f.to)
	fromData, err := fs.ReadFile(c.FS, fromPath)
	if err != nil {
		return err
	}
	toData, err := fs.ReadFile(c.FS, toPath)
	if err != nil {
		return err
	}
	fromImgs, err := state.Images(fromData)
	if err != nil {
		return fmt.Errorf("%s: %w", fromPath, err)
	}
	toImgs, err := state.Images(toData)
	if err != nil {
		return fmt.Errorf("%s: %w", toPath, err)
	}

	names := f.services
	var leftOut []string
	if len(names) == 0 {
		for _, n := range state.SortedKeys(fromImgs) {
			if _, ok := toImgs[n]; ok {
				names = append(names, n)
			} else {
				leftOut = append(leftOut, n)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	set := map[string]string{}
	var errs []error
	for _, n := range names {
		src, ok1 := fromImgs[n]
		dst, ok2 := toImgs[n]
		switch {
		case !ok1:
			errs = append(errs, fmt.Errorf("--service %s: not in %s", n, fromPath))
		case !ok2:
			errs = append(errs, fmt.Errorf("--service %s: not in %s (add it there by hand first)", n, toPath))
		case src.Image != dst.Image:
			set[n] = src.Image
		}
	}
	if err := errors.Join(errs...); err != nil {
		return host.ListErrors(err)
	}
	short := c.Hash[:7]
	if len(leftOut) > 0 {
		fmt.Fprintf(out, "only in %s, left out: %s\n", fromPath, strings.Join(leftOut, ", "))
	}
	if len(set) == 0 {
		fmt.Fprintf(out, "nothing to promote: the images of %s already match %s at %s\n", toPath, fromPath, short)
		return nil
	}

	newData, err := state.SetImages(toData, set)
	if err != nil {
		return fmt.Errorf("%s: %w", toPath, err)
	}
	if _, err := state.Load(overlayFS{FS: c.FS, name: toPath, data: newData}, f.to); err != nil {
		return fmt.Errorf("the promoted %s would be invalid: %w", toPath, host.ListErrors(err))
	}

	var summary, diff strings.Builder
	fmt.Fprintf(&diff, "--- a/%s\n+++ b/%s\n", toPath, toPath)
	oldLines, newLines := strings.Split(string(toData), "\n"), strings.Split(string(newData), "\n")
	byLine := state.SortedKeys(set)
	for _, n := range byLine {
		fmt.Fprintf(&summary, "  %s: %s → %s\n", n, toImgs[n].Image, set[n])
	}
	slices.SortFunc(byLine, func(a, b string) int { return toImgs[a].Line - toImgs[b].Line })
	for _, n := range byLine {
		l := toImgs[n].Line
		fmt.Fprintf(&diff, "@@ -%d +%d @@ %s\n-%s\n+%s\n", l, l, n, oldLines[l-1], newLines[l-1])
	}
	fmt.Fprintf(out, "promote %s → %s at %s:\n%s\n%s", f.from, f.to, short, summary.String(), diff.String())
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
		f.from, f.to, strings.Join(state.SortedKeys(set), ", "), fromPath, c.Hash, summary.String())
	h, err := c.Branch(branch, map[string][]byte{toPath: newData}, msg, author, time.Now())
	if errors.Is(err, gitrepo.ErrBranchExists) {
		return fmt.Errorf("branch %s exists already: this commit was promoted before (delete the branch to redo it)", branch)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nbranch %s at %s\nnext: git push origin %s, then open a PR into main\n", branch, h[:12], branch)
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

// overlayFS is fsys with one file's content replaced: it lets Load validate
// a file before it is committed.
type overlayFS struct {
	fs.FS
	name string
	data []byte
}

// Open implements fs.FS.
func (o overlayFS) Open(name string) (fs.File, error) {
	if name != o.name {
		return o.FS.Open(name)
	}
	fi, err := fs.Stat(o.FS, name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(o.data), info: sizedInfo{FileInfo: fi, size: int64(len(o.data))}}, nil
}

type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

type sizedInfo struct {
	fs.FileInfo
	size int64
}

func (i sizedInfo) Size() int64 { return i.size }
