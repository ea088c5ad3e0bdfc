package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
)

// TestHistoryEscapesControls: a commit's author and message and a
// deploy's error come from outside (anyone who can push, a program's
// output): `history` shows their control characters escaped, so that a
// message cannot clear the terminal or add rows that look like deploys.
func TestHistoryEscapesControls(t *testing.T) {
	dir := t.TempDir()
	st, err := history.Open(statedir.HistoryPath(dir, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.Append(history.Record{Env: "dev", Commit: "c0ffee", Author: "eve\x1b[8m", Message: "fix\x1b[2J\r\n2026-11-30T00:00:00Z  1s  apply  succeeded",
		Trigger: "apply", Start: now, End: now.Add(time.Second), Result: history.Failed, Error: "migrate: \x1b]0;owned\x07 failed"}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"history", "--env", "dev", "--state-dir", dir}, &out, &errb); code != 0 {
		t.Fatalf("history: exit %d\n%s", code, errb.String())
	}
	if strings.ContainsAny(out.String(), "\x1b\r\x07") || strings.Count(out.String(), "\n") != 3 {
		t.Errorf("control characters reach the terminal:\n%q", out.String())
	}
	for _, want := range []string{`eve\x1b[8m`, `fix\x1b[2J\r\n2026-11-30`, `migrate: \x1b]0;owned\a failed`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("history lacks %s:\n%s", want, out.String())
		}
	}
}
