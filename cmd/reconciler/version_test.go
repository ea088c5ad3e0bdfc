package main

import (
	"bytes"
	"context"
	"testing"
)

// TestVersionCommand: `reconciler version` prints what `--version` prints.
func TestVersionCommand(t *testing.T) {
	var a, b, errs bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &a, &errs); code != 0 {
		t.Fatalf("version: exit %d: %s", code, errs.String())
	}
	if code := run(context.Background(), []string{"--version"}, &b, &errs); code != 0 {
		t.Fatalf("--version: exit %d: %s", code, errs.String())
	}
	if a.String() != b.String() || a.Len() == 0 {
		t.Fatalf("version printed %q, --version %q", a.String(), b.String())
	}
}
