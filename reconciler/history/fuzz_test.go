package history

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzRead: any file content reads without a panic or an error; every
// line is a record or counted as skipped.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"env":"prod","commit":"abc","result":"succeeded"}` + "\n"))
	f.Add([]byte("{\"env\":\n\x00torn"))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "h.jsonl")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		recs, skipped, err := Read(path)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		lines := 0
		for i, b := range content {
			if b == '\n' || i == len(content)-1 {
				lines++
			}
		}
		if len(recs)+skipped != lines {
			t.Fatalf("%d records + %d skipped, want %d lines", len(recs), skipped, lines)
		}
	})
}
