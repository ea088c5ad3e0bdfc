package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnvFlagChecked: --env becomes part of paths under the state dir, so
// every command refuses a name that is not an environment name (run --env
// ../x wrote its lock outside the state dir) before it touches anything.
func TestEnvFlagChecked(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	sd := filepath.Join(root, "state")
	for _, args := range [][]string{
		{"run", "--env", "../x", "--repo", root, "--listen", ""},
		{"diff", "--env", "../x", "--repo", root},
		{"apply", "--env", "../x", "--repo", root},
		{"status", "--env", "../x"},
		{"validate", "--env", "../x", "--repo", root},
		{"history", "--env", "../x"},
	} {
		// Bounded: without the check, run starts an agent.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var outb, errb bytes.Buffer
		code := run(ctx, append(args, "--state-dir", sd), &outb, &errb)
		cancel()
		out, errOut := outb.String(), errb.String()
		if code != 1 || !strings.Contains(errOut, `--env: invalid environment name "../x"`) {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.Name() != "state" {
			t.Errorf("%s was written outside the state dir", e.Name())
		}
	}
}

// TestAgentLockErrorIsNotAnotherAgent: a state dir where the agent's lock
// cannot be taken (here its lock file is a directory; a read-only state
// dir is the same) is reported as such, not as another agent running.
func TestAgentLockErrorIsNotAnotherAgent(t *testing.T) {
	t.Parallel()
	sd := t.TempDir()
	if err := os.Mkdir(filepath.Join(sd, "lk14.agent.lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "run", "--env", "lk14", "--repo", t.TempDir(), "--listen", "", "--state-dir", sd)
	if code != 1 || strings.Contains(errOut, "another agent") || !strings.Contains(errOut, "agent lock for env lk14 in state dir "+sd) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}
