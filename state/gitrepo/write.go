package gitrepo

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"
)

// ErrBranchExists is returned by Branch when the branch already exists.
var ErrBranchExists = errors.New("branch already exists")

// Author is who a commit made by Branch names as author and committer.
type Author struct {
	Name, Email string
}

// ParseAuthor reads "Name <email>".
func ParseAuthor(s string) (Author, error) {
	name, rest, ok := strings.Cut(s, "<")
	email, _, ok2 := strings.Cut(rest, ">")
	name, email = strings.TrimSpace(name), strings.TrimSpace(email)
	if !ok || !ok2 || name == "" || email == "" {
		return Author{}, fmt.Errorf("want an author as \"Name <email>\", got %q", s)
	}
	return Author{Name: name, Email: email}, nil
}

// DefaultAuthor returns the author git itself would use: GIT_AUTHOR_NAME
// and GIT_AUTHOR_EMAIL, else user.name and user.email of the repository's,
// the user's and the system's git config. It fails when neither names one.
func (c *Commit) DefaultAuthor() (Author, error) {
	a := Author{Name: os.Getenv("GIT_AUTHOR_NAME"), Email: os.Getenv("GIT_AUTHOR_EMAIL")}
	if a.Name != "" && a.Email != "" {
		return a, nil
	}
	for _, scope := range []config.Scope{config.LocalScope, config.GlobalScope, config.SystemScope} {
		cfg, err := c.repo.ConfigScoped(scope)
		if err != nil {
			continue
		}
		if a.Name == "" {
			a.Name = cfg.User.Name
		}
		if a.Email == "" {
			a.Email = cfg.User.Email
		}
	}
	if a.Name == "" || a.Email == "" {
		return Author{}, errors.New("no git author: set --author, GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL, or git config user.name and user.email")
	}
	return a, nil
}

// Branch commits files (repository paths → new content) on top of c and
// creates the branch refs/heads/<branch> at the new commit. Every path must
// already exist in c's tree as a regular file. Only objects and the new ref
// are written: the working tree, the index, HEAD and every other branch stay
// as they were. It returns the new commit's hash, or ErrBranchExists.
func (c *Commit) Branch(branch string, files map[string][]byte, message string, author Author, when time.Time) (string, error) {
	name := plumbing.NewBranchReferenceName(branch)
	if err := name.Validate(); err != nil || branch == "" {
		return "", fmt.Errorf("branch name %q: not valid", branch)
	}
	if _, err := c.repo.Reference(name, false); err == nil {
		return "", fmt.Errorf("%s: %w", branch, ErrBranchExists)
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return "", fmt.Errorf("read branch %s: %w", branch, err)
	}
	parent, err := c.repo.CommitObject(plumbing.NewHash(c.Hash))
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", c.Hash, err)
	}
	tree, err := parent.Tree()
	if err != nil {
		return "", fmt.Errorf("read tree of %s: %w", c.Hash, err)
	}
	st := c.repo.Storer
	root := tree.Hash
	for p, data := range files {
		blob, err := writeBlob(st, data)
		if err != nil {
			return "", fmt.Errorf("write %s: %w", p, err)
		}
		root, err = replaceEntry(st, root, strings.Split(p, "/"), blob)
		if err != nil {
			return "", fmt.Errorf("write %s: %w", p, err)
		}
	}
	sig := object.Signature{Name: author.Name, Email: author.Email, When: when}
	commit := &object.Commit{
		Author: sig, Committer: sig, Message: message,
		TreeHash: root, ParentHashes: []plumbing.Hash{parent.Hash},
	}
	obj := st.NewEncodedObject()
	if err := commit.Encode(obj); err != nil {
		return "", fmt.Errorf("encode commit: %w", err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		return "", fmt.Errorf("write commit: %w", err)
	}
	// The existence check above is the guard: a concurrent run that creates
	// the same branch promotes the same commit to the same content.
	if err := st.SetReference(plumbing.NewHashReference(name, h)); err != nil {
		return "", fmt.Errorf("create branch %s: %w", branch, err)
	}
	return h.String(), nil
}

func writeBlob(st storage.Storer, data []byte) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// replaceEntry writes a copy of the tree treeHash in which the regular file
// at path points to blob, and the copies of the trees above it, and returns
// the new tree's hash.
func replaceEntry(st storage.Storer, treeHash plumbing.Hash, path []string, blob plumbing.Hash) (plumbing.Hash, error) {
	t, err := object.GetTree(st, treeHash)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	entries := make([]object.TreeEntry, len(t.Entries))
	copy(entries, t.Entries)
	for i, e := range entries {
		if e.Name != path[0] {
			continue
		}
		switch {
		case len(path) == 1 && (e.Mode == filemode.Regular || e.Mode == filemode.Executable):
			entries[i].Hash = blob
		case len(path) > 1 && e.Mode == filemode.Dir:
			sub, err := replaceEntry(st, e.Hash, path[1:], blob)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries[i].Hash = sub
		default:
			return plumbing.ZeroHash, fmt.Errorf("%s: not a regular file at this commit", path[0])
		}
		obj := st.NewEncodedObject()
		if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
			return plumbing.ZeroHash, err
		}
		return st.SetEncodedObject(obj)
	}
	return plumbing.ZeroHash, fmt.Errorf("%s: not found at this commit", path[0])
}
