package gitrepo_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// TestMirrorFetch: a file:// and an http remote (token-protected) are
// mirrored on disk; Fetch follows pushes; a reopened mirror keeps working.
func TestMirrorFetch(t *testing.T) {
	t.Parallel()
	const token = "s3cret-token"
	r := testenv.NewRepo(t)
	r.Write("envs/dev.yaml", "environment: dev\n")
	r.Commit("first")
	bare := r.Bare()
	srv := testenv.StartGitServer(t, filepath.Dir(bare), token)

	for _, tc := range []struct{ name, url, token string }{
		{"file", "file://" + bare, ""},
		{"http", srv.URL + "/" + filepath.Base(bare), token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			first, msg := r.Git("rev-parse", "HEAD"), r.Git("log", "-1", "--format=%s")
			dir := filepath.Join(t.TempDir(), "mirror")
			auth, err := gitrepo.Auth(tc.url, gitrepo.AuthOptions{Token: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			m, err := gitrepo.OpenMirror(dir, tc.url, "main", auth)
			if err != nil {
				t.Fatal(err)
			}
			c, err := m.Fetch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Hash != first || c.Message != msg {
				t.Fatalf("fetched %s %q, want %s", c.Hash, c.Message, first)
			}
			b, err := fs.ReadFile(c.FS, "envs/dev.yaml")
			if err != nil || !strings.HasPrefix(string(b), "environment: dev\n") {
				t.Fatalf("read at commit: %q %v", b, err)
			}
			// Same tip again: same commit, no error.
			if c2, err := m.Fetch(ctx); err != nil || c2.Hash != first {
				t.Fatalf("second fetch: %v %v", c2, err)
			}

			// A new push: a reopened mirror (as after a restart) sees it.
			if tc.name == "file" {
				r.Write("envs/dev.yaml", "environment: dev\n# two\n")
				r.Commit("second")
				r.Push()
			}
			m, err = gitrepo.OpenMirror(dir, tc.url, "main", auth)
			if err != nil {
				t.Fatal(err)
			}
			c, err = m.Fetch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			head := r.Git("rev-parse", "HEAD")
			if c.Hash != head {
				t.Fatalf("after push fetched %s, want %s", c.Hash, head)
			}
			if _, err := m.Commit(head); err != nil {
				t.Fatal(err)
			}
			// The mirror keeps the history (Ancestry needs it): not shallow.
			if b, err := os.ReadFile(filepath.Join(dir, "shallow")); err == nil && len(strings.Fields(string(b))) > 0 {
				t.Fatalf("mirror is shallow: %q", b)
			}
		})
	}

	t.Run("bad token", func(t *testing.T) {
		url := srv.URL + "/" + filepath.Base(bare)
		auth, _ := gitrepo.Auth(url, gitrepo.AuthOptions{Token: "wrong-token-value"})
		m, err := gitrepo.OpenMirror(t.TempDir(), url, "main", auth)
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Fetch(context.Background())
		if err == nil || strings.Contains(err.Error(), "wrong-token-value") {
			t.Fatalf("fetch with a bad token: %v", err)
		}
	})
}

// TestMirrorAncestry: on a real repository, Ancestry returns the commits
// after the applied one up to the tip, oldest first, merged ones included;
// after a force-push to an older commit, or a rewritten branch, the tip does
// not descend from the applied commit (ErrNotDescendant); a mirror left
// shallow by an older version is fetched again in full.
func TestMirrorAncestry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := testenv.NewRepo(t)
	r.Write("a", "1")
	c1 := r.Commit("c1")
	bare := r.Bare()
	dir := filepath.Join(t.TempDir(), "mirror")
	m, err := gitrepo.OpenMirror(dir, "file://"+bare, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func() string {
		t.Helper()
		c, err := m.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c.Hash
	}
	hashes := func(cs []*gitrepo.Commit) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Hash[:7])
		}
		return strings.Join(s, " ")
	}
	fetch()
	r.Write("a", "2")
	c2 := r.Commit("c2")
	r.Git("checkout", "-q", "-b", "side", c1)
	r.Write("b", "1")
	side := r.Commit("side")
	r.Git("checkout", "-q", "main")
	r.Git("merge", "-q", "--no-edit", "side")
	merge := r.Git("rev-parse", "HEAD")
	r.Push()
	if tip := fetch(); tip != merge {
		t.Fatalf("tip %s, want the merge %s", tip, merge)
	}
	got, err := m.Ancestry(ctx, c1, merge)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Hash != merge || !strings.Contains(hashes(got), c2[:7]) || !strings.Contains(hashes(got), side[:7]) {
		t.Fatalf("Ancestry(c1, merge) = %s, want c2, side and the merge", hashes(got))
	}
	if got, err := m.Ancestry(ctx, merge, merge); err != nil || len(got) != 0 {
		t.Fatalf("Ancestry(tip, tip) = %s, %v", hashes(got), err)
	}

	// A force-push back to c2 (a replayed older commit).
	r.Git("reset", "-q", "--hard", c2)
	r.Push()
	if tip := fetch(); tip != c2 {
		t.Fatalf("tip after the force-push %s, want %s", tip, c2)
	}
	if got, err := m.Ancestry(ctx, merge, c2); !errors.Is(err, gitrepo.ErrNotDescendant) {
		t.Fatalf("Ancestry(merge, older c2) = %s, %v; want ErrNotDescendant", hashes(got), err)
	}
	// A rewritten branch: a new commit on c1 that does not contain c2.
	r.Git("reset", "-q", "--hard", c1)
	r.Write("a", "rewritten")
	rewritten := r.Commit("rewritten")
	r.Push()
	fetch()
	if _, err := m.Ancestry(ctx, c2, rewritten); !errors.Is(err, gitrepo.ErrNotDescendant) {
		t.Fatalf("Ancestry(c2, rewritten) = %v; want ErrNotDescendant", err)
	}
	// An applied commit the mirror never saw cannot be an ancestor.
	if _, err := m.Ancestry(ctx, strings.Repeat("ab", 20), rewritten); !errors.Is(err, gitrepo.ErrNotDescendant) {
		t.Fatalf("Ancestry(unknown, tip) = %v; want ErrNotDescendant", err)
	}

	// A shallow mirror (as the depth-1 fetches of older versions left it)
	// is fetched again in full, so the walk reaches the applied commit.
	old := filepath.Join(t.TempDir(), "old.git")
	r.Git("clone", "-q", "--bare", "--depth", "1", "file://"+bare, old)
	m, err = gitrepo.OpenMirror(old, "file://"+bare, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	fetch()
	if got, err := m.Ancestry(ctx, c1, rewritten); err != nil || hashes(got) != rewritten[:7] {
		t.Fatalf("Ancestry(c1, rewritten) on a formerly shallow mirror = %s, %v", hashes(got), err)
	}
}

// TestVerify: a commit signed by a trusted key passes; an unsigned one and
// one signed by another key are refused with the reason.
func TestVerify(t *testing.T) {
	t.Parallel()
	trusted := testenv.NewSigningKey(t, "trusted")
	other := testenv.NewSigningKey(t, "other")
	r := testenv.NewRepo(t)
	r.Write("a", "1")
	unsigned := r.Commit("unsigned")
	r.Write("a", "2")
	good := r.CommitSigned("signed", trusted)
	r.Write("a", "3")
	bad := r.CommitSigned("signed by other", other)
	bare := r.Bare()

	m, err := gitrepo.OpenMirror(t.TempDir(), "file://"+bare, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := m.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tip.Hash != bad {
		t.Fatalf("tip %s, want %s", tip.Hash, bad)
	}
	if _, err := tip.Verify(trusted.Public); !errors.Is(err, gitrepo.ErrUntrusted) {
		t.Fatalf("commit signed by another key: %v", err)
	}
	// The other commits, read from a full clone.
	for _, tc := range []struct {
		hash string
		want error
	}{{unsigned, gitrepo.ErrUnsigned}, {good, nil}} {
		c, err := gitrepo.Open(context.Background(), r.Dir, tc.hash)
		if err != nil {
			t.Fatal(err)
		}
		fp, err := c.Verify(trusted.Public)
		if !errors.Is(err, tc.want) || (tc.want == nil && fp == "") {
			t.Fatalf("verify %s: %q %v, want %v", tc.hash[:8], fp, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://x-access-token:ghp_secret@github.com/o/r.git": "https://x-access-token@github.com/o/r.git",
		"https://github.com/o/r.git":                           "https://github.com/o/r.git",
		"https://ghp_secret@github.com/o/r.git":                "https://redacted@github.com/o/r.git",
		"ssh://git@github.com/o/r.git":                         "ssh://git@github.com/o/r.git",
		"git@github.com:o/r.git":                               "git@github.com:o/r.git",
		"file:///srv/r.git":                                    "file:///srv/r.git",
		"http://u:tok%zz@host/r.git":                           "http://redacted@host/r.git",
		"http://TOK%zz@host":                                   "http://redacted@host",
	} {
		if got := gitrepo.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactErrors: a token in the repository URL (a lone user name over
// HTTP, or a password in a URL that does not parse) is in no error of
// Open, OpenMirror's Fetch or Auth, whatever built the error.
func TestRedactErrors(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{
		"http://TOKEN1234abcd@127.0.0.1:1/r.git",
		"http://u:TOKEN1234abcd%zz@127.0.0.1:1/r.git",
		"http://u:TOKEN1234abcd@127.0.0.1:1/r.git",
	} {
		var errs []error
		_, err := gitrepo.Open(ctx, raw, "")
		errs = append(errs, err)
		if m, err := gitrepo.OpenMirror(t.TempDir(), raw, "main", nil); err != nil {
			errs = append(errs, err)
		} else {
			_, err := m.Fetch(ctx)
			errs = append(errs, err)
		}
		_, err = gitrepo.Auth(raw, gitrepo.AuthOptions{Token: "x"})
		errs = append(errs, err)
		for i, err := range errs {
			if i < 2 && err == nil {
				t.Fatalf("%s: error %d is nil", raw, i)
			}
			if err != nil && strings.Contains(err.Error(), "TOKEN1234abcd") {
				t.Errorf("%s: error shows the token: %v", raw, err)
			}
		}
	}
}
