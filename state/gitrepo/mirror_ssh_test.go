package gitrepo_test

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// TestMirrorFetchSSH: a mirror of an ssh:// remote (an in-process ssh
// server running git upload-pack) authenticates with a key file, checks
// the host key against a known_hosts file, and follows pushes; a host key
// that known_hosts does not list, or a client key the server does not
// accept, fails the fetch with an error that says so.
func TestMirrorFetchSSH(t *testing.T) {
	t.Parallel()
	r := testenv.NewRepo(t)
	r.Write("envs/dev.yaml", "environment: dev\n")
	first := r.Commit("first")
	bare := r.Bare()
	sshURL, keyFile, knownHosts := testenv.StartSSHGit(t, bare)
	ctx := context.Background()

	open := func(t *testing.T, dir string, o gitrepo.AuthOptions) *gitrepo.Mirror {
		t.Helper()
		auth, err := gitrepo.Auth(sshURL, o)
		if err != nil {
			t.Fatal(err)
		}
		m, err := gitrepo.OpenMirror(dir, sshURL, "main", auth)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("fetch", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "mirror")
		m := open(t, dir, gitrepo.AuthOptions{SSHKeyFile: keyFile, KnownHostsFile: knownHosts})
		c, err := m.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash != first || c.Message != "first" {
			t.Fatalf("fetched %s %q, want %s", c.Hash, c.Message, first)
		}
		b, err := fs.ReadFile(c.FS, "envs/dev.yaml")
		if err != nil || string(b) != "environment: dev\n" {
			t.Fatalf("read at commit: %q %v", b, err)
		}
		// Same tip again: same commit, no error.
		if c2, err := m.Fetch(ctx); err != nil || c2.Hash != first {
			t.Fatalf("second fetch: %v %v", c2, err)
		}

		r.Write("envs/dev.yaml", "environment: dev\n# two\n")
		second := r.Commit("second")
		r.Push()
		c, err = m.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash != second {
			t.Fatalf("after push fetched %s, want %s", c.Hash, second)
		}
		b, err = fs.ReadFile(c.FS, "envs/dev.yaml")
		if err != nil || string(b) != "environment: dev\n# two\n" {
			t.Fatalf("read at second commit: %q %v", b, err)
		}

		// A reopened mirror (as after a restart) keeps working.
		m = open(t, dir, gitrepo.AuthOptions{SSHKeyFile: keyFile, KnownHostsFile: knownHosts})
		if c, err := m.Fetch(ctx); err != nil || c.Hash != second {
			t.Fatalf("fetch after reopen: %v %v", c, err)
		}
	})

	t.Run("unknown host key", func(t *testing.T) {
		u, err := url.Parse(sshURL)
		if err != nil {
			t.Fatal(err)
		}
		// known_hosts lists another key for the same host and port.
		_, otherKey := testenv.NewSSHKey(t)
		wrong := testenv.WriteKnownHosts(t, u.Host, otherKey)
		m := open(t, t.TempDir(), gitrepo.AuthOptions{SSHKeyFile: keyFile, KnownHostsFile: wrong})
		_, err = m.Fetch(ctx)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) || len(ke.Want) == 0 {
			t.Fatalf("fetch with a wrong known_hosts entry: %v, want a host key mismatch", err)
		}
	})

	t.Run("unknown client key", func(t *testing.T) {
		otherKeyFile, _ := testenv.NewSSHKey(t)
		m := open(t, t.TempDir(), gitrepo.AuthOptions{SSHKeyFile: otherKeyFile, KnownHostsFile: knownHosts})
		_, err := m.Fetch(ctx)
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("fetch with a key the server does not accept: %v, want an auth error", err)
		}
	})
}
