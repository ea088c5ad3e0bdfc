package statedir

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

func TestLockSerializesAndNamesHolder(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	unlock, err := d.Lock(ctx, "dev", "apply --env dev", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second holder times out and is told who holds the lock.
	_, err = d.Lock(ctx, "dev", "apply --env dev", 150*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if want := "pid " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "apply --env dev") {
		t.Fatalf("error %q does not name the holder (%s)", err, want)
	}
	// Another env is independent.
	u2, err := d.Lock(ctx, "prod", "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	u2()
	// A waiter gets the lock once it is released.
	got := make(chan error, 1)
	go func() {
		u, err := d.Lock(ctx, "dev", "apply", 5*time.Second)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

func TestHashKeyStable(t *testing.T) {
	d, _ := Open(t.TempDir())
	k1, err := d.HashKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := d.HashKey()
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatalf("keys differ or wrong size: %d", len(k1))
	}
	fi, _ := os.Stat(d.Path() + "/hash.key")
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
}

// TestHashKeyRace: processes that open a new state dir at once (two
// agents of two envs on one host) all get the key the dir keeps: a key
// that lost the race to create the file would make that process's hashes
// differ from every later one's, and its env redeploy for nothing.
func TestHashKeyRace(t *testing.T) {
	for round := 0; round < 50; round++ {
		path := t.TempDir()
		const n = 8
		keys := make([][]byte, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				d, err := Open(path)
				if err != nil {
					errs[i] = err
					return
				}
				<-start
				keys[i], errs[i] = d.HashKey()
			})
		}
		close(start)
		wg.Wait()
		kept, err := os.ReadFile(path + "/hash.key")
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
			if !bytes.Equal(keys[i], kept) {
				t.Fatalf("round %d: a process got a key the dir does not keep", round)
			}
		}
		if entries, _ := os.ReadDir(path); len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("round %d: files beside the key: %v", round, names)
		}
	}
}

func TestMigrationRecord(t *testing.T) {
	d, _ := Open(t.TempDir())
	if h, err := d.LastMigration("dev"); err != nil || h != "" {
		t.Fatalf("empty record = %q, %v", h, err)
	}
	if err := d.RecordMigration("dev", "abc"); err != nil {
		t.Fatal(err)
	}
	if h, _ := d.LastMigration("dev"); h != "abc" {
		t.Fatalf("record = %q", h)
	}
}

// TestOwnedRecords: none before the first write; what was written comes
// back; an empty list removes the record (mode 0600 while it exists).
func TestOwnedRecords(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.OwnedRecords("prod"); got != nil || err != nil {
		t.Fatalf("before: %v %v", got, err)
	}
	keys := []state.RecordKey{{Zone: "Z1", Name: "api.example.com.", Type: "A", SetIdentifier: "prod"}}
	if err := d.RecordOwnedRecords("prod", keys); err != nil {
		t.Fatal(err)
	}
	if got, err := d.OwnedRecords("prod"); err != nil || len(got) != 1 || got[0] != keys[0] {
		t.Fatalf("after: %v %v", got, err)
	}
	if fi, err := os.Stat(d.path + "/prod.records"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record file: %v %v", fi, err)
	}
	if err := d.RecordOwnedRecords("prod", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := d.OwnedRecords("prod"); got != nil || err != nil {
		t.Fatalf("after forgetting: %v %v", got, err)
	}
}
