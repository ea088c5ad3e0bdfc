package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestInit: init writes envs/NAME.yaml, validate accepts it once
// committed, and a second init refuses to overwrite it.
func TestInit(t *testing.T) {
	r := testenv.NewRepo(t)
	code, out, errOut := runCLI(t, "init", "--env", "qa", "--repo", r.Dir)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	path := filepath.Join(r.Dir, "envs", "qa.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	r.Commit("init qa")
	if code, out, errOut := runCLI(t, "validate", "--env", "qa", "--repo", r.Dir); code != 0 || !strings.Contains(out, "valid (2 services)") {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}

	if err := os.WriteFile(path, []byte("environment: qa # edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "init", "--env", "qa", "--repo", r.Dir)
	if code != 1 || !strings.Contains(errOut, "exists; not overwritten") {
		t.Fatalf("second init: exit %d\n%s", code, errOut)
	}
	if got, _ := os.ReadFile(path); string(got) != "environment: qa # edited\n" {
		t.Fatalf("init overwrote the file: %q", got)
	}
	if code, _, errOut := runCLI(t, "init", "--env", "Bad_Name", "--repo", r.Dir); code != 1 || !strings.Contains(errOut, `invalid environment name "Bad_Name"`) {
		t.Fatalf("bad name: exit %d\n%s", code, errOut)
	}
}
