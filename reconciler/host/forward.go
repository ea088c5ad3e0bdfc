package host

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/developer-mesh/reconciler/state"
)

// ErrNotForward is returned by CheckForward when the commit does not
// contain what the host runs.
var ErrNotForward = errors.New("not a descendant of the live commit")

// ErrUnknownCommit is returned by Source.Contains for a commit the
// repository does not hold.
var ErrUnknownCommit = errors.New("commit not in the repository")

// CheckForward returns ErrNotForward unless every commit the env's
// containers were deployed from is src or an ancestor of src (apply
// --forward-only): re-running an old deploy, an old workflow run, must not
// take the host back. A container unchanged since an older commit carries
// that commit, an ancestor of the live one, so a forward deploy passes.
func CheckForward(src Source, o *state.Observed) error {
	if src.Contains == nil {
		return errors.New("--forward-only: the repository cannot tell ancestry")
	}
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
		ok, err := src.Contains(h)
		switch {
		case errors.Is(err, ErrUnknownCommit):
			problems = append(problems, fmt.Sprintf("%s runs %s, which is not in the repository's history", strings.Join(seen[h], ", "), state.ShortHash(h)))
		case err != nil:
			return err
		case !ok:
			problems = append(problems, fmt.Sprintf("%s runs %s, which %s does not contain", strings.Join(seen[h], ", "), state.ShortHash(h), state.ShortHash(src.Hash)))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s %w (%s); nothing was changed (a rollback is a revert commit, or apply without --forward-only)",
			state.ShortHash(src.Hash), ErrNotForward, strings.Join(problems, "; "))
	}
	return nil
}
