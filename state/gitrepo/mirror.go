package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/developer-mesh/reconciler/state"
)

// mirrorCache bounds the objects go-git keeps decoded in memory: an env
// repository is small, and the agent must stay small while idle.
const mirrorCache = 4 << 20

// Mirror is a persistent bare clone of one branch of a remote, kept on disk
// and updated by incremental fetches, as a long-running agent needs: a
// restart does not clone again, and a fetch transfers only the objects the
// mirror lacks. The mirror keeps the branch's whole history, so that
// Ancestry can tell whether a new tip descends from the applied commit. A
// shallow mirror left by an older version is cloned again in full.
// A Mirror is safe for use by one goroutine at a time; Fetch and Commit
// serialize on an internal mutex.
type Mirror struct {
	url, branch string
	auth        transport.AuthMethod
	mu          sync.Mutex
	repo        *git.Repository
}

// AuthOptions say how to authenticate to the remote. Secrets are read from
// files or the environment by the caller and are never logged or put into
// an error message.
type AuthOptions struct {
	// Token is sent as the password of HTTP basic auth for http(s) URLs
	// (GitHub accepts a token with any user name).
	Token string
	// SSHKeyFile is a private key (PEM/OpenSSH) for ssh:// and scp-style URLs.
	SSHKeyFile string
	// KnownHostsFile is checked for the server's host key; empty means the
	// defaults of ssh (SSH_KNOWN_HOSTS, ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts).
	KnownHostsFile string
}

// Auth returns the go-git auth method for rawURL, or nil when none is needed.
func Auth(rawURL string, o AuthOptions) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		return nil, RedactError(rawURL, fmt.Errorf("repository URL %s: %w", Redact(rawURL), err))
	}
	switch ep.Protocol {
	case "http", "https":
		if o.Token == "" {
			return nil, nil
		}
		user := ep.User
		if user == "" {
			user = "x-access-token"
		}
		return &githttp.BasicAuth{Username: user, Password: o.Token}, nil
	case "ssh":
		user := ep.User
		if user == "" {
			user = "git"
		}
		var a *gitssh.PublicKeys
		if o.SSHKeyFile == "" {
			return nil, fmt.Errorf("ssh repository %s needs --ssh-key-file", Redact(rawURL))
		}
		a, err = gitssh.NewPublicKeysFromFile(user, o.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("read ssh key %s: %w", o.SSHKeyFile, err)
		}
		var files []string
		if o.KnownHostsFile != "" {
			files = append(files, o.KnownHostsFile)
		}
		cb, err := gitssh.NewKnownHostsCallback(files...)
		if err != nil {
			return nil, fmt.Errorf("read known_hosts: %w", err)
		}
		a.HostKeyCallback = cb
		return a, nil
	default:
		return nil, nil
	}
}

// OpenMirror opens the mirror kept in dir (a bare repository, created on
// first use) of branch at rawURL. It does not contact the remote.
func OpenMirror(dir, rawURL, branch string, auth transport.AuthMethod) (*Mirror, error) {
	if branch == "" {
		return nil, errors.New("mirror: want a branch name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create mirror dir: %w", err)
	}
	st := filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(mirrorCache), filesystem.Options{KeepDescriptors: false})
	r, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.Init(st, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("open mirror %s: %w", dir, err)
	}
	if shallow, err := st.Shallow(); err != nil || len(shallow) > 0 {
		// A shallow mirror (fetched with depth 1 before) cannot prove that
		// a tip descends from the applied commit: start it again in full.
		if err := emptyDir(dir); err != nil {
			return nil, fmt.Errorf("reset shallow mirror %s: %w", dir, err)
		}
		st = filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(mirrorCache), filesystem.Options{KeepDescriptors: false})
		if r, err = git.Init(st, nil); err != nil {
			return nil, fmt.Errorf("open mirror %s: %w", dir, err)
		}
	}
	remote := &config.RemoteConfig{Name: "origin", URLs: []string{rawURL},
		Fetch: []config.RefSpec{refSpec(branch)}}
	cfg, err := r.Config()
	if err != nil {
		return nil, fmt.Errorf("read mirror config: %w", err)
	}
	// The URL or branch may change between runs: the flags win.
	cfg.Remotes["origin"] = remote
	if err := r.SetConfig(cfg); err != nil {
		return nil, fmt.Errorf("write mirror config: %w", err)
	}
	return &Mirror{url: rawURL, branch: branch, auth: auth, repo: r}, nil
}

// emptyDir removes everything in dir, keeping dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func refSpec(branch string) config.RefSpec {
	return config.RefSpec("+refs/heads/" + branch + ":refs/remotes/origin/" + branch)
}

// Fetch brings the branch from the remote and returns its tip. Only the
// objects the mirror lacks are transferred; when the tip did not move
// nothing but the ref advertisement is. Errors name the URL without credentials.
func (m *Mirror) Fetch(ctx context.Context) (*Commit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{refSpec(m.branch)},
		Auth:       m.auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, RedactError(m.url, fmt.Errorf("fetch %s from %s: %w", m.branch, Redact(m.url), err))
	}
	ref, err := m.repo.Reference(plumbing.NewRemoteReferenceName("origin", m.branch), true)
	if err != nil {
		return nil, fmt.Errorf("branch %s of %s: %w", m.branch, Redact(m.url), err)
	}
	return resolve(m.repo, Redact(m.url), ref.Hash().String())
}

// Commit returns a commit already in the mirror (one Fetch returned).
func (m *Mirror) Commit(hash string) (*Commit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return resolve(m.repo, Redact(m.url), hash)
}

// ErrNotDescendant is wrapped by Ancestry's error when the tip does not
// descend from the applied commit: the branch was force-pushed, or an older
// commit replayed.
var ErrNotDescendant = errors.New("does not descend from the applied commit")

// Ancestry returns the commits of the mirror after applied up to and
// including tip, oldest first: every commit that tip reaches and applied
// does not (a merged branch's commits included). When tip does not descend
// from applied, or applied is not in the mirror (which holds every commit
// the branch ever reached since the mirror was made, so a commit of the
// branch is in it), the error wraps ErrNotDescendant. tip == applied
// returns no commit. The commits' FS is nil; Verify works on them.
func (m *Mirror) Ancestry(ctx context.Context, applied, tip string) ([]*Commit, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	repo := Redact(m.url)
	t, err := m.repo.CommitObject(plumbing.NewHash(tip))
	if err != nil {
		return nil, fmt.Errorf("read tip %s: %w", state.ShortHash(tip), err)
	}
	a, err := m.repo.CommitObject(plumbing.NewHash(applied))
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("tip %s %w %s (that commit is not on branch %s of %s)", state.ShortHash(tip), ErrNotDescendant,
			state.ShortHash(applied), m.branch, repo)
	}
	if err != nil {
		return nil, fmt.Errorf("read applied commit %s: %w", state.ShortHash(applied), err)
	}
	if a.Hash == t.Hash {
		return nil, nil
	}
	if ok, err := a.IsAncestor(t); err != nil {
		return nil, fmt.Errorf("walk %s..%s: %w", state.ShortHash(applied), state.ShortHash(tip), err)
	} else if !ok {
		return nil, fmt.Errorf("tip %s %w %s (branch %s of %s was rewritten, or an older commit pushed again)", state.ShortHash(tip),
			ErrNotDescendant, state.ShortHash(applied), m.branch, repo)
	}
	// What applied reaches is not new: mark it seen, then walk from tip.
	seen := map[plumbing.Hash]bool{}
	if err := object.NewCommitPreorderIter(a, nil, nil).ForEach(func(c *object.Commit) error {
		seen[c.Hash] = true
		return ctx.Err()
	}); err != nil {
		return nil, fmt.Errorf("walk the history of %s: %w", state.ShortHash(applied), err)
	}
	var out []*Commit
	err = object.NewCommitPreorderIter(t, seen, nil).ForEach(func(c *object.Commit) error {
		msg, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
		out = append(out, &Commit{Hash: c.Hash.String(), Author: c.Author.Name + " <" + c.Author.Email + ">",
			Message: msg, When: c.Author.When, repo: m.repo})
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s..%s: %w", state.ShortHash(applied), state.ShortHash(tip), err)
	}
	slices.Reverse(out)
	return out, nil
}

// ErrUnsigned is returned by Verify for a commit without a signature.
var ErrUnsigned = errors.New("commit is not signed")

// ErrUntrusted is returned by Verify for a commit whose signature is not
// made by one of the trusted keys, or does not match the commit.
var ErrUntrusted = errors.New("commit signature is not from a trusted key")

// Verify checks the OpenPGP signature of c against the armored public keys
// in trustedKeys. It returns the fingerprint of the signing key, or an
// error wrapping ErrUnsigned or ErrUntrusted that says why.
func (c *Commit) Verify(trustedKeys string) (string, error) {
	obj, err := c.repo.CommitObject(plumbing.NewHash(c.Hash))
	if err != nil {
		return "", fmt.Errorf("read commit %s: %w", c.Hash, err)
	}
	if strings.TrimSpace(obj.PGPSignature) == "" {
		return "", fmt.Errorf("%s: %w", state.ShortHash(c.Hash), ErrUnsigned)
	}
	e, err := obj.Verify(trustedKeys)
	if err != nil {
		return "", fmt.Errorf("%s: %w: %v", state.ShortHash(c.Hash), ErrUntrusted, err)
	}
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint), nil
}

// Redact drops the credentials from a URL, for logs and errors: the
// password, and over HTTP a lone user name (https://TOKEN@host), which is
// a credential too (ssh's "git@" is not, and ssh URLs keep it). A URL that
// does not parse loses its whole user info, so a token never comes back
// through a parse error.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok {
			return raw // a local path or scp-style user@host:path
		}
		if at := strings.LastIndex(hostPart(rest), "@"); at >= 0 {
			rest = "redacted@" + rest[at+1:]
		}
		return scheme + "://" + rest
	}
	if u.User == nil {
		return raw
	}
	if _, hasPass := u.User.Password(); hasPass {
		u.User = url.User(u.User.Username())
	} else if u.Scheme == "http" || u.Scheme == "https" {
		u.User = url.User("redacted")
	}
	return u.String()
}

// hostPart is the authority of a URL's text after "scheme://".
func hostPart(rest string) string {
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		return rest[:end]
	}
	return rest
}

// credentials are the texts of raw that Redact drops, as written and
// unescaped: what an error from the transport may quote.
func credentials(raw string) []string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	at := strings.LastIndex(hostPart(rest), "@")
	if at < 0 {
		return nil
	}
	user, pass, hasPass := strings.Cut(rest[:at], ":")
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if u, err := url.PathUnescape(s); err == nil {
			out = append(out, u)
		}
		if u, err := url.QueryUnescape(s); err == nil {
			out = append(out, u)
		}
	}
	if hasPass {
		add(pass)
	}
	if !hasPass && scheme != "ssh" {
		add(user) // over HTTP a lone user name is the token
	}
	return out
}

// RedactError is err with every credential of the repository URL raw
// replaced, whatever quoted it (net/http's url.Error hides a password,
// not a user name; a parse error quotes the whole URL). errors.Is and
// errors.As still see err.
func RedactError(raw string, err error) error {
	return state.NewScrubber(credentials(raw)...).Error(err)
}
