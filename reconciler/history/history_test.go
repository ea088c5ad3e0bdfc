package history

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func rec(i int) Record {
	t0 := time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC)
	return Record{Env: "prod", Commit: fmt.Sprintf("%040d", i), Start: t0, End: t0.Add(time.Second), Result: Succeeded, Steps: []string{"+ web: create blue"}}
}

func TestAppendRead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history", "prod.jsonl")
	if got, skipped, err := Read(path); err != nil || len(got) != 0 || skipped != 0 {
		t.Fatalf("missing file: %v %d %v", got, skipped, err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	got, skipped, err := Read(path)
	if err != nil || skipped != 0 || len(got) != 3 || got[2].Commit != rec(2).Commit || got[0].Steps[0] != "+ web: create blue" {
		t.Fatalf("read = %+v skipped %d err %v", got, skipped, err)
	}
}

// TestTornLine: a crash in the middle of a write leaves a partial last
// line; Read skips it and the next Open cuts it off so appends stay whole.
func TestTornLine(t *testing.T) {
	t.Parallel()
	for _, torn := range []string{`{"env":"prod","com`, `{`, "garbage"} {
		path := filepath.Join(t.TempDir(), "history", "prod.jsonl")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Append(rec(1))
		s.Close()
		f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		f.WriteString(torn)
		f.Close()

		got, skipped, err := Read(path)
		if err != nil || len(got) != 1 || skipped != 1 {
			t.Fatalf("torn %q: read %d records, %d skipped, %v", torn, len(got), skipped, err)
		}
		s, err = Open(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Append(rec(2))
		s.Close()
		got, skipped, err = Read(path)
		if err != nil || len(got) != 2 || skipped != 0 || got[1].Commit != rec(2).Commit {
			t.Fatalf("torn %q, after reopen: %d records, %d skipped, %v", torn, len(got), skipped, err)
		}
	}
	// A file that is only a torn line becomes empty.
	path := filepath.Join(t.TempDir(), "h.jsonl")
	os.WriteFile(path, []byte(`{"env"`), 0o600)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("torn-only file = %q", b)
	}
}

// TestReadWhileAppending: a reader never sees a half record as a record.
func TestReadWhileAppending(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "history", "prod.jsonl")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			if err := s.Append(rec(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	last, deadline := 0, time.Now().Add(30*time.Second)
	for last < 200 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 200 records after 30s", last)
		}
		got, _, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < last {
			t.Fatalf("history shrank: %d → %d", last, len(got))
		}
		for i, r := range got {
			if r.Commit != rec(i).Commit || r.Result != Succeeded {
				t.Fatalf("record %d = %+v", i, r)
			}
		}
		last = len(got)
	}
	wg.Wait()
}
