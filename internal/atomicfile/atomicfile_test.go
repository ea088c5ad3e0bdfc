package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// entries lists dir's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestWrite: a new file and a replaced one hold exactly the bytes and the
// mode asked for, and no temp file is left beside them.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.conf")
	for _, tc := range []struct {
		data []byte
		perm fs.FileMode
	}{
		{[]byte("one\n"), 0o600},
		{[]byte("two, longer\n"), 0o644},
		{nil, 0o640},
	} {
		if err := Write(path, tc.data, tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(tc.data) {
			t.Errorf("content %q, want %q", got, tc.data)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.perm {
			t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
		}
		if names := entries(t, dir); len(names) != 1 || names[0] != "a.conf" {
			t.Errorf("directory holds %q, want only a.conf", names)
		}
	}
}

// TestWriteFailureLeavesNothing: when the rename cannot happen (path is a
// non-empty directory) the target is unchanged and the temp file is gone;
// a missing directory is an error.
func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(target, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("x"), 0o644); err == nil {
		t.Fatal("write over a non-empty directory succeeded")
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "busy" {
		t.Errorf("directory holds %q after a failed write, want only busy", names)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("target changed: %v %v", fi, err)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write into a missing directory = %v, want ErrNotExist", err)
	}
}

// TestRemove: Remove deletes a file, and a missing file is not an error.
func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m")
	if err := Write(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat after remove = %v, want ErrNotExist", err)
	}
	if err := Remove(path); err != nil {
		t.Errorf("remove of a missing file = %v, want nil", err)
	}
	if err := Remove(filepath.Join(dir, "nodir", "x")); err != nil {
		t.Errorf("remove in a missing directory = %v, want nil", err)
	}
}

// TestCreate: Create makes a new file with the data and mode given, and
// refuses (fs.ErrExist) to replace one that exists, leaving it and no
// temp file behind.
func TestCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := Create(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Create(path, []byte("second"), 0o644)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create: %v, want fs.ErrExist", err)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(b) != "first" || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after the refused Create: %q, %v", b, fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}
