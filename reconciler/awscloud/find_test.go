package awscloud

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindHelper: the helper beside the executable wins over $PATH, with
// the executable's symlink resolved (reconciler installed as a link to a
// release directory); a link's own directory is not looked in.
func TestFindHelper(t *testing.T) {
	release, links, path := t.TempDir(), t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(release, "reconciler"), filepath.Join(release, HelperName), filepath.Join(path, HelperName), filepath.Join(links, HelperName)} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(links, "reconciler")
	if err := os.Symlink(filepath.Join(release, "reconciler"), exe); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", path)
	if got, err := findHelper(exe); err != nil || got != filepath.Join(release, HelperName) {
		t.Fatalf("beside the resolved executable: %q, %v", got, err)
	}
	if err := os.Remove(filepath.Join(release, HelperName)); err != nil {
		t.Fatal(err)
	}
	if got, err := findHelper(exe); err != nil || got != filepath.Join(path, HelperName) {
		t.Fatalf("from $PATH: %q, %v", got, err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err := findHelper(exe)
	if !errors.Is(err, ErrNoHelper) || !strings.Contains(err.Error(), release) || strings.Contains(err.Error(), links+" ") {
		t.Fatalf("missing: %v", err)
	}
}
