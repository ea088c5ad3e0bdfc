// Package gitrepo reads the desired state from one git commit with go-git:
// a local repository path or a remote URL, a ref, and an fs.FS over that
// commit's tree. It never reads the working tree.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/developer-mesh/reconciler/state"
)

// Commit is one resolved commit and its tree.
type Commit struct {
	Hash    string
	Author  string
	Message string // first line
	When    time.Time
	// FS reads the commit's tree; paths are relative to the repository root.
	FS fs.FS

	repo *git.Repository
}

// IsURL reports whether repo names a remote (scheme:// or scp-style user@host:path).
func IsURL(repo string) bool {
	if strings.Contains(repo, "://") {
		return true
	}
	at, colon := strings.Index(repo, "@"), strings.Index(repo, ":")
	return at > 0 && colon > at
}

// Open resolves ref ("" means HEAD) in repo: a local path (the repository or
// any directory inside it) or a URL, which is cloned into memory. Its errors
// name a URL without its password.
func Open(ctx context.Context, repo, ref string) (*Commit, error) {
	return OpenAuth(ctx, repo, ref, nil)
}

// OpenAuth is Open with auth (see Auth) for a URL; nil means none. A local
// path ignores it.
func OpenAuth(ctx context.Context, repo, ref string, auth transport.AuthMethod) (*Commit, error) {
	r, err := openRepo(ctx, repo, auth)
	if err != nil {
		return nil, err
	}
	return resolve(r, Redact(repo), ref)
}

func openRepo(ctx context.Context, repo string, auth transport.AuthMethod) (*git.Repository, error) {
	if IsURL(repo) {
		r, err := git.CloneContext(ctx, memory.NewStorage(), nil, &git.CloneOptions{URL: repo, Auth: auth, NoCheckout: true, Tags: git.AllTags})
		if err != nil {
			return nil, RedactError(repo, fmt.Errorf("clone %s: %w", Redact(repo), err))
		}
		return r, nil
	}
	r, err := git.PlainOpenWithOptions(repo, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("open git repository %s: %w", repo, err)
	}
	return r, nil
}

func resolve(r *git.Repository, repo, ref string) (*Commit, error) {
	rev := ref
	if rev == "" {
		rev = "HEAD"
	}
	h, err := r.ResolveRevision(plumbing.Revision(rev))
	if err != nil && !strings.Contains(rev, "/") {
		// A branch of a cloned remote lives under origin/.
		if h2, err2 := r.ResolveRevision(plumbing.Revision("origin/" + rev)); err2 == nil {
			h, err = h2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %q in %s: %w", rev, repo, err)
	}
	c, err := r.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", h, err)
	}
	msg, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return &Commit{
		Hash:    c.Hash.String(),
		Author:  c.Author.Name + " <" + c.Author.Email + ">",
		Message: msg,
		When:    c.Author.When,
		FS:      treeFS{tree: tree, sizer: sizerOf(r)},
		repo:    r,
	}, nil
}

// Resolve resolves another revision of the same repository (for diff --base).
func (c *Commit) Resolve(ref string) (*Commit, error) {
	return resolve(c.repo, "the repository", ref)
}

// treeFS is a read-only fs.FS over a git tree. A file's size comes from
// the object store's header (sizer) and its content is inflated only on
// the first Read, so a caller that checks Stat's size first (state's
// readFile) never loads an object that is too large.
type treeFS struct {
	tree  *object.Tree
	sizer objectSizer // nil: the size comes from inflating the object
}

// objectSizer is go-git's object stores that read an object's size from
// its header without inflating it (filesystem and memory storage).
type objectSizer interface {
	EncodedObjectSize(h plumbing.Hash) (int64, error)
}

func sizerOf(r *git.Repository) objectSizer {
	s, _ := r.Storer.(objectSizer)
	return s
}

// Open implements fs.FS.
func (t treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &dir{name: ".", tree: t.tree}, nil
	}
	e, err := t.tree.FindEntry(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if e.Mode == filemode.Dir {
		sub, err := t.tree.Tree(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dir{name: name, tree: sub}, nil
	}
	open := func() (io.ReadCloser, error) {
		f, err := t.tree.TreeEntryFile(e)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		rc, err := f.Reader()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return rc, nil
	}
	fl := &file{info: info{name: path.Base(name), mode: fileMode(e.Mode)}, open: open}
	if t.sizer != nil {
		if fl.info.size, err = t.sizer.EncodedObjectSize(e.Hash); err == nil {
			return fl, nil
		}
	}
	f, err := t.tree.TreeEntryFile(e)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	fl.info.size = f.Size
	return fl, nil
}

// ReadFile implements fs.ReadFileFS.
func (t treeFS) ReadFile(name string) ([]byte, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fl, ok := f.(*file); ok {
		return io.ReadAll(fl)
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
}

func fileMode(m filemode.FileMode) fs.FileMode {
	switch m {
	case filemode.Executable:
		return 0o755
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	default:
		return 0o644
	}
}

type info struct {
	name string
	size int64
	mode fs.FileMode
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }

type file struct {
	info info
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser // nil until the first Read
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *file) Read(b []byte) (int, error) {
	if f.rc == nil {
		rc, err := f.open()
		if err != nil {
			return 0, err
		}
		f.rc = rc
	}
	return f.rc.Read(b)
}

func (f *file) Close() error {
	if f.rc == nil {
		return nil
	}
	return f.rc.Close()
}

type dir struct {
	name string
	tree *object.Tree
	off  int
}

func (d *dir) Stat() (fs.FileInfo, error) {
	return info{name: path.Base(d.name), mode: fs.ModeDir | 0o755}, nil
}
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *dir) Close() error { return nil }

// ReadDir implements fs.ReadDirFile.
func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	entries := d.tree.Entries[d.off:]
	if n > 0 && len(entries) > n {
		entries = entries[:n]
	}
	if n > 0 && len(entries) == 0 {
		return nil, io.EOF
	}
	d.off += len(entries)
	out := make([]fs.DirEntry, len(entries))
	for i, e := range entries {
		var size int64
		if e.Mode != filemode.Dir {
			if f, err := d.tree.TreeEntryFile(&e); err == nil {
				size = f.Size
			}
		}
		out[i] = fs.FileInfoToDirEntry(info{name: e.Name, size: size, mode: fileMode(e.Mode)})
	}
	return out, nil
}

// ErrUnknownCommit is returned by Contains when the commit is not in the
// repository.
var ErrUnknownCommit = errors.New("commit not in the repository")

// Contains reports whether hash is c or one of its ancestors. It returns
// ErrUnknownCommit when the repository does not hold hash.
func (c *Commit) Contains(hash string) (bool, error) {
	if hash == c.Hash {
		return true, nil
	}
	other, err := c.repo.CommitObject(plumbing.NewHash(hash))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, fmt.Errorf("%s: %w", state.ShortHash(hash), ErrUnknownCommit)
	}
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", state.ShortHash(hash), err)
	}
	cur, err := c.repo.CommitObject(plumbing.NewHash(c.Hash))
	if err != nil {
		return false, fmt.Errorf("read commit %s: %w", state.ShortHash(c.Hash), err)
	}
	ok, err := other.IsAncestor(cur)
	if err != nil {
		return false, fmt.Errorf("is %s an ancestor of %s: %w", state.ShortHash(hash), state.ShortHash(c.Hash), err)
	}
	return ok, nil
}
