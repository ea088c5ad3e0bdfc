package gitrepo

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrRevertByHand is returned by RevertFiles when the revert is not a
// plain restore of files: the commit adds or deletes files, is a merge,
// or a later commit on c changed one of its files.
var ErrRevertByHand = errors.New("revert it by hand with git revert")

// RevertFiles returns the files (repository paths → content) that make
// c's tree undo commit hash: each file hash changed gets the content it
// had before hash. It is the revert git would make, computed only where it
// needs no merge: every file hash changed must be in c's tree exactly as
// hash left it. Otherwise it returns an error wrapping ErrRevertByHand.
func (c *Commit) RevertFiles(hash string) (map[string][]byte, error) {
	rel, err := c.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	if rel.NumParents() != 1 {
		return nil, fmt.Errorf("commit %s has %d parents: %w", short(hash), rel.NumParents(), ErrRevertByHand)
	}
	parent, err := rel.Parent(0)
	if err != nil {
		return nil, fmt.Errorf("read the parent of %s: %w", short(hash), err)
	}
	tip, err := c.repo.CommitObject(plumbing.NewHash(c.Hash))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", c.Hash, err)
	}
	if ok, err := rel.IsAncestor(tip); err != nil || !ok {
		return nil, fmt.Errorf("commit %s is not on %s: %w", short(hash), short(c.Hash), ErrRevertByHand)
	}
	before, err := parent.Tree()
	if err != nil {
		return nil, err
	}
	after, err := rel.Tree()
	if err != nil {
		return nil, err
	}
	now, err := tip.Tree()
	if err != nil {
		return nil, err
	}
	changes, err := object.DiffTree(before, after)
	if err != nil {
		return nil, fmt.Errorf("diff %s: %w", short(hash), err)
	}
	files := map[string][]byte{}
	for _, ch := range changes {
		if ch.From.Name == "" || ch.To.Name == "" || ch.From.Name != ch.To.Name {
			return nil, fmt.Errorf("commit %s adds, deletes or renames %s%s: %w", short(hash), ch.From.Name, ch.To.Name, ErrRevertByHand)
		}
		p := ch.To.Name
		cur, err := now.File(p)
		if err != nil || cur.Hash != ch.To.TreeEntry.Hash {
			return nil, fmt.Errorf("%s changed again after %s: %w", p, short(hash), ErrRevertByHand)
		}
		old, err := before.File(p)
		if err != nil {
			return nil, fmt.Errorf("read %s at the parent of %s: %w", p, short(hash), err)
		}
		r, err := old.Reader()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, err
		}
		files[p] = b
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("commit %s changes no file: %w", short(hash), ErrRevertByHand)
	}
	return files, nil
}

// Subject is the first line of the message of commit hash.
func (c *Commit) Subject(hash string) (string, error) {
	rel, err := c.repo.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", hash, err)
	}
	s, _, _ := strings.Cut(rel.Message, "\n")
	return s, nil
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// CheckBranch fails unless branch is a valid name for a new branch of
// c's repository: well-formed and not there yet (ErrBranchExists).
func (c *Commit) CheckBranch(branch string) error {
	name := plumbing.NewBranchReferenceName(branch)
	if err := name.Validate(); err != nil || branch == "" {
		return fmt.Errorf("branch name %q: not valid", branch)
	}
	if _, err := c.repo.Reference(name, false); err == nil {
		return fmt.Errorf("%s: %w", branch, ErrBranchExists)
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return fmt.Errorf("read branch %s: %w", branch, err)
	}
	return nil
}
