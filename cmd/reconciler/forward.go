package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// ErrNotForward is returned by apply --forward-only when the commit does
// not contain what the host runs.
var ErrNotForward = errors.New("not a descendant of the live commit")

// checkForward returns ErrNotForward unless every commit the env's
// containers were deployed from is c or an ancestor of c: re-running an
// old deploy (an old workflow run) must not take the host back. A container
// unchanged since an older commit carries that commit, an ancestor of the
// live one, so a forward deploy always passes.
func checkForward(c *gitrepo.Commit, o *state.Observed) error {
	seen := map[string][]string{}
	for _, ct := range o.Containers {
		if ct.Commit != "" {
			seen[ct.Commit] = append(seen[ct.Commit], ct.Name)
		}
	}
	commits := make([]string, 0, len(seen))
	for h := range seen {
		commits = append(commits, h)
	}
	sort.Strings(commits)
	var problems []string
	for _, h := range commits {
		ok, err := c.Contains(h)
		switch {
		case errors.Is(err, gitrepo.ErrUnknownCommit):
			problems = append(problems, fmt.Sprintf("%s runs %s, which is not in the repository's history", strings.Join(seen[h], ", "), shortCommit(h)))
		case err != nil:
			return err
		case !ok:
			problems = append(problems, fmt.Sprintf("%s runs %s, which %s does not contain", strings.Join(seen[h], ", "), shortCommit(h), shortCommit(c.Hash)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s %w (%s); nothing was changed (a rollback is a revert commit, or apply without --forward-only)",
			shortCommit(c.Hash), ErrNotForward, strings.Join(problems, "; "))
	}
	return nil
}
