// Package statedir keeps reconciler's files on the host: the per-environment
// apply lock, the key of the secret hashes, the record of the last
// successful migrations run, and the images each service ran. Every write
// is atomic.
package statedir

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/developer-mesh/reconciler/internal/atomicfile"
	"github.com/developer-mesh/reconciler/state"
)

// DefaultDir is the state directory on a production host.
const DefaultDir = "/var/lib/reconciler"

// ErrLocked is returned by Lock when another process held the lock for the
// whole timeout.
var ErrLocked = errors.New("lock held by another process")

// Dir is a state directory.
type Dir struct{ path string }

// Open returns the state directory at path, creating it (0700) if needed.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Holder describes who holds a lock; it is written into the lock file.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

func (h Holder) String() string {
	return fmt.Sprintf("pid %d on %s (%q) since %s", h.PID, h.Host, h.Command, h.Since.Format(time.RFC3339))
}

// Lock takes the apply lock of env, waiting up to timeout (polling, so a
// cancelled ctx ends the wait). The returned func releases it. The lock is an
// flock(2) on <dir>/<env>.lock, so it is released when the process dies.
// When the wait times out, the error wraps ErrLocked and names the holder.
func (d *Dir) Lock(ctx context.Context, env, command string, timeout time.Duration) (func(), error) {
	path := filepath.Join(d.path, env+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			holder := "an unknown process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				var h Holder
				if json.Unmarshal(b, &h) == nil && h.PID > 0 {
					holder = h.String()
				}
			}
			f.Close()
			return nil, fmt.Errorf("env %s: %w: %s; waited %s (raise --lock-timeout to wait longer)", env, ErrLocked, holder, timeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(Holder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now().UTC().Truncate(time.Second)})
	// The holder note is advisory; the flock is the lock.
	if err := f.Truncate(0); err == nil {
		f.WriteAt(b, 0)
	}
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// HashKey returns the host's key for secret and env hashes, creating a
// random 32-byte key (0600) on first use. Processes that start together
// on a new state dir (two agents of two envs) get the same key: the key
// file is created, never replaced, and the one that loses the race reads
// the winner's. A key file shorter than 32 bytes (not one this wrote) is
// replaced.
func (d *Dir) HashKey() ([]byte, error) {
	path := filepath.Join(d.path, "hash.key")
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read hash key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make hash key: %w", err)
	}
	if err == nil { // too short: replace it
		if err := atomicfile.Write(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("write hash key: %w", err)
		}
		return key, nil
	}
	err = atomicfile.Create(path, key, 0o600)
	if errors.Is(err, os.ErrExist) {
		if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
			return b, nil
		}
		return nil, fmt.Errorf("read hash key: %s was created by another process but holds no key", path)
	}
	if err != nil {
		return nil, fmt.Errorf("write hash key: %w", err)
	}
	return key, nil
}

// LastMigration returns the spec hash of env's last successful migrations
// run, or "" when none is recorded.
func (d *Dir) LastMigration(env string) (string, error) {
	b, err := os.ReadFile(filepath.Join(d.path, env+".migrations"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read migrations record: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// RecordMigration remembers hash as env's last successful migrations run,
// and reads the record back: it returns nil only once LastMigration
// returns hash.
func (d *Dir) RecordMigration(env, hash string) error {
	if err := atomicfile.Write(filepath.Join(d.path, env+".migrations"), []byte(hash+"\n"), 0o600); err != nil {
		return fmt.Errorf("record migrations: %w", err)
	}
	got, err := d.LastMigration(env)
	if err != nil {
		return fmt.Errorf("record migrations: %w", err)
	}
	if got != hash {
		return fmt.Errorf("record migrations: read back %q, wrote %q", got, hash)
	}
	return nil
}

// MigrationRuns returns env's record of the migrations runs applied
// (<env>.migrations.json), oldest first; nil when none is recorded.
func (d *Dir) MigrationRuns(env string) ([]state.MigrationRun, error) {
	path := filepath.Join(d.path, env+".migrations.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read migrations runs: %w", err)
	}
	var runs []state.MigrationRun
	if err := json.Unmarshal(b, &runs); err != nil {
		return nil, fmt.Errorf("read migrations runs %s: %w", path, err)
	}
	return runs, nil
}

// RecordMigrationRuns replaces env's record of the migrations runs
// applied, atomically.
func (d *Dir) RecordMigrationRuns(env string, runs []state.MigrationRun) error {
	if runs == nil {
		runs = []state.MigrationRun{}
	}
	b, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(d.path, env+".migrations.json"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record migrations runs: %w", err)
	}
	return nil
}

// Settings returns the env file's settings recorded for env (path →
// display form), or nil when none is recorded.
func (d *Dir) Settings(env string) (map[string]string, error) {
	path := filepath.Join(d.path, env+".settings")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read settings record: %w", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read settings record %s: %w", path, err)
	}
	return m, nil
}

// RecordSettings remembers settings as env's applied settings, atomically.
// They hold no secret (see state.Setting.Display).
func (d *Dir) RecordSettings(env string, settings map[string]string) error {
	if settings == nil {
		settings = map[string]string{}
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(d.path, env+".settings"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record settings: %w", err)
	}
	return nil
}

// OwnedRecords returns the Route 53 record sets reconciler wrote for env
// (<env>.records, JSON), sorted; nil when none is recorded.
func (d *Dir) OwnedRecords(env string) ([]state.RecordKey, error) {
	path := filepath.Join(d.path, env+".records")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Route 53 ownership record: %w", err)
	}
	var keys []state.RecordKey
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("read Route 53 ownership record %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, nil
}

// RecordOwnedRecords remembers keys as the Route 53 record sets
// reconciler wrote for env, atomically; an empty list removes the record.
func (d *Dir) RecordOwnedRecords(env string, keys []state.RecordKey) error {
	path := filepath.Join(d.path, env+".records")
	if len(keys) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("record Route 53 ownership: %w", err)
		}
		return nil
	}
	b, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record Route 53 ownership: %w", err)
	}
	return nil
}

// Images returns env's image history (<env>.images, JSON), empty when none
// is recorded.
func (d *Dir) Images(env string) (state.ImageHistory, error) {
	h := state.ImageHistory{}
	b, err := os.ReadFile(filepath.Join(d.path, env+".images"))
	if errors.Is(err, os.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image history: %w", err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("read image history %s: %w", filepath.Join(d.path, env+".images"), err)
	}
	return h, nil
}

// RecordImages replaces env's image history, atomically.
func (d *Dir) RecordImages(env string, h state.ImageHistory) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(d.path, env+".images"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record image history: %w", err)
	}
	return nil
}
