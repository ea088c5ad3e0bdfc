package gitrepo

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// gitRun runs git in dir with a fixed identity.
func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenReadsCommitNotWorkingTree(t *testing.T) {
	dir := t.TempDir()
	gitRun(t, dir, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(dir, "envs/dev.yaml"), "environment: dev\n")
	writeFile(t, filepath.Join(dir, "templates/a.yaml"), "a: 1\n")
	gitRun(t, dir, "add", ".")
	gitRun(t, dir, "commit", "-q", "-m", "first\n\nbody")
	first := gitRun(t, dir, "rev-parse", "HEAD")[:40]
	writeFile(t, filepath.Join(dir, "envs/dev.yaml"), "environment: dev\n# second\n")
	gitRun(t, dir, "commit", "-q", "-am", "second")
	// Uncommitted edits must never be read.
	writeFile(t, filepath.Join(dir, "envs/dev.yaml"), "UNCOMMITTED\n")

	ctx := context.Background()
	c, err := Open(ctx, filepath.Join(dir, "envs"), "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(c.FS, "envs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "environment: dev\n# second\n" {
		t.Fatalf("HEAD content = %q", b)
	}
	if c.Message != "second" || c.Author != "Test <t@example.com>" {
		t.Fatalf("commit meta = %q %q", c.Message, c.Author)
	}
	old, err := Open(ctx, dir, first)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = fs.ReadFile(old.FS, "envs/dev.yaml")
	if string(b) != "environment: dev\n" || old.Message != "first" {
		t.Fatalf("first commit content = %q, message %q", b, old.Message)
	}
	if _, err := fs.ReadFile(c.FS, "envs/missing.yaml"); !os.IsNotExist(err) {
		t.Fatalf("missing file error = %v, want not-exist", err)
	}
	if err := fstest.TestFS(c.FS, "envs/dev.yaml", "templates/a.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir, "no-such-ref"); err == nil {
		t.Fatal("bad ref: want an error")
	}
	// A remote by URL, cloned into memory; a branch name resolves.
	u, err := Open(ctx, "file://"+dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	if u.Hash != c.Hash {
		t.Fatalf("clone HEAD %s, want %s", u.Hash, c.Hash)
	}
}

// TestOpenRedactsURL: a token in the URL stays out of Open's errors.
func TestOpenRedactsURL(t *testing.T) {
	// Port 1 on loopback refuses the connection: the clone fails at once.
	_, err := Open(context.Background(), "http://x-access-token:s3cret-token@127.0.0.1:1/r.git", "")
	if err == nil || strings.Contains(err.Error(), "s3cret-token") {
		t.Fatalf("Open = %v; want an error without the token", err)
	}
}

func TestIsURL(t *testing.T) {
	for in, want := range map[string]bool{
		".": false, "/srv/deploy": false, "file:///srv/x.git": true,
		"https://github.com/a/b.git": true, "git@github.com:a/b.git": true,
	} {
		if got := IsURL(in); got != want {
			t.Errorf("IsURL(%q) = %v, want %v", in, got, want)
		}
	}
}
