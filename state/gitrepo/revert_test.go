package gitrepo

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"
)

// TestRevertFiles: the revert of a release commit restores the files it
// changed, on a branch made on the tip; a commit whose files changed
// again, or that adds a file, is left to git revert by hand.
func TestRevertFiles(t *testing.T) {
	dir := t.TempDir()
	gitRun(t, dir, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(dir, "envs/prod.yaml"), "image: v1\n")
	writeFile(t, filepath.Join(dir, "README"), "r1\n")
	gitRun(t, dir, "add", ".")
	gitRun(t, dir, "commit", "-q", "-m", "v1")
	writeFile(t, filepath.Join(dir, "envs/prod.yaml"), "image: v2\n")
	gitRun(t, dir, "commit", "-q", "-am", "release v2\n\nbody")
	rel := gitRun(t, dir, "rev-parse", "HEAD")[:40]
	writeFile(t, filepath.Join(dir, "README"), "r2\n")
	gitRun(t, dir, "commit", "-q", "-am", "docs")

	ctx := context.Background()
	c, err := Open(ctx, dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.RevertFiles(rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || string(files["envs/prod.yaml"]) != "image: v1\n" {
		t.Fatalf("revert files %q, want envs/prod.yaml back at v1", files)
	}
	if s, err := c.Subject(rel); err != nil || s != "release v2" {
		t.Fatalf("subject %q, %v", s, err)
	}
	h, err := c.Branch("revert/x", files, "Revert", Author{Name: "T", Email: "t@example.com"}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, dir, "revert/x")
	if err != nil || b.Hash != h {
		t.Fatalf("branch: %v, %v", b, err)
	}
	if got, _ := fs.ReadFile(b.FS, "envs/prod.yaml"); string(got) != "image: v1\n" {
		t.Fatalf("env file on the branch %q", got)
	}
	if got, _ := fs.ReadFile(b.FS, "README"); string(got) != "r2\n" {
		t.Fatalf("the later commit's file on the branch %q, want it kept", got)
	}

	// Changed again after the release: not a plain restore.
	writeFile(t, filepath.Join(dir, "envs/prod.yaml"), "image: v3\n")
	gitRun(t, dir, "commit", "-q", "-am", "v3")
	c, err = Open(ctx, dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevertFiles(rel); !errors.Is(err, ErrRevertByHand) {
		t.Fatalf("revert of a file changed again: %v, want ErrRevertByHand", err)
	}
	// A commit that adds a file.
	writeFile(t, filepath.Join(dir, "new.txt"), "n\n")
	gitRun(t, dir, "add", ".")
	gitRun(t, dir, "commit", "-q", "-m", "add")
	add := gitRun(t, dir, "rev-parse", "HEAD")[:40]
	c, err = Open(ctx, dir, "main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevertFiles(add); !errors.Is(err, ErrRevertByHand) {
		t.Fatalf("revert of an added file: %v, want ErrRevertByHand", err)
	}
}
