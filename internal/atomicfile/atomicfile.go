// Package atomicfile replaces files so that a reader, or the disk after a
// crash, sees the old bytes or the new ones, never a mix or nothing.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write makes path hold data with mode perm, atomically and durably: it
// writes a temp file in path's directory (named ".<base>.tmp-*", so no glob
// such as nginx's *.conf ever matches it), fsyncs it, closes it, sets perm
// on it, renames it over path, and fsyncs the directory. On error path is
// unchanged and the temp file is gone. The directory must exist.
func Write(path string, data []byte, perm fs.FileMode) error {
	tmp, err := temp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Create makes path hold data with mode perm, as Write does, only when
// path does not exist: of two processes creating the same path at once,
// one wins and the other gets an error matching fs.ErrExist, and path
// holds the winner's bytes whole (a hard link of the synced temp file,
// which never replaces an entry).
func Create(path string, data []byte, perm fs.FileMode) error {
	tmp, err := temp(path, data, perm)
	if err != nil {
		return err
	}
	err = os.Link(tmp, path)
	os.Remove(tmp)
	if err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// temp writes data to a new temp file beside path, fsyncs and closes it,
// sets perm on it and returns its name; on error it is gone.
func temp(path string, data []byte, perm fs.FileMode) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	// Chmod, not CreateTemp's 0600 masked by the umask: perm is exact.
	if err := os.Chmod(f.Name(), perm); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// Remove deletes path and fsyncs its directory, so that the removal
// survives a crash. A path that does not exist is not an error.
func Remove(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs the directory dir, making the creation, rename or removal
// of an entry in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
