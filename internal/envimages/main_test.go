package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun lists each image once, sorted, the migrations job's included, and
// refuses a file with none (a scan of nothing is not a clean scan).
func TestRun(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`environment: good
services:
  web:
    image: ghcr.io/o/web:v2
  api:
    image: ghcr.io/o/api:v1
  worker:
    image: ghcr.io/o/api:v1
migrations:
  image: ghcr.io/o/migrate@sha256:`+strings.Repeat("a", 64)+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(good, &out); err != nil {
		t.Fatal(err)
	}
	want := `["ghcr.io/o/api:v1","ghcr.io/o/migrate@sha256:` + strings.Repeat("a", 64) + `","ghcr.io/o/web:v2"]` + "\n"
	if out.String() != want {
		t.Fatalf("got %s want %s", out.String(), want)
	}

	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("environment: empty\nservices: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(empty, &out); err == nil || !strings.Contains(err.Error(), "no image") {
		t.Fatalf("an env without images: got %v, want an error", err)
	}
}

// TestShippedEnvs: every shipped env file has images to scan.
func TestShippedEnvs(t *testing.T) {
	files, err := filepath.Glob("../../envs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no envs: %v", err)
	}
	for _, f := range files {
		var out bytes.Buffer
		if err := run(f, &out); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if !strings.HasPrefix(out.String(), `["ghcr.io/`) {
			t.Errorf("%s: %s", f, out.String())
		}
	}
}
