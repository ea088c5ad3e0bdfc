package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/developer-mesh/reconciler/reconciler"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		sp   reconciler.StepProgress
		want string
	}{
		{reconciler.StepProgress{Action: reconciler.ActWatch, Target: "web/green", Elapsed: 130*time.Second + 400*time.Millisecond, Limit: 5 * time.Minute,
			Traffic: reconciler.Traffic{Requests: 1204, Errors: 2}, Counted: true},
			"watch web/green 2m10s / 5m · 1,204 req · 0.2 % 5xx"},
		{reconciler.StepProgress{Action: reconciler.ActWatch, Target: "web/green", Elapsed: 10 * time.Second, Limit: time.Minute},
			"watch web/green 10s / 1m"},
		{reconciler.StepProgress{Action: reconciler.ActPull, Target: "ghcr.io/developer-mesh/devops-mcp:v1.4.3", Bytes: 120e6, Total: 210e6},
			"pull ghcr.io/…:v1.4.3 120 MB / 210 MB"},
		{reconciler.StepProgress{Action: reconciler.ActPull, Target: "web:v2", Bytes: 0}, "pull web:v2 0.0 MB"},
		{reconciler.StepProgress{Action: reconciler.ActWaitHealthy, Target: "web/green", Elapsed: 4 * time.Second, Limit: time.Minute, Passes: 1, Want: 2},
			"wait-healthy web/green 4s / 1m · 1/2 passes"},
		{reconciler.StepProgress{Action: reconciler.ActDrain, Target: "web/blue", Elapsed: 12 * time.Second, Limit: 30 * time.Second},
			"drain web/blue 12s / 30s"},
		{reconciler.StepProgress{Action: reconciler.ActDrain, Target: "web/blue", Elapsed: 501 * time.Millisecond, Limit: 500 * time.Millisecond},
			"drain web/blue 500ms / 500ms"},
		{reconciler.StepProgress{Action: reconciler.ActWatch, Target: "api/green", Elapsed: time.Hour, Limit: 90 * time.Minute, Counted: true,
			Traffic: reconciler.Traffic{Requests: 1234567}},
			"watch api/green 1h / 1h30m · 1,234,567 req · 0.0 % 5xx"},
	} {
		if got := Format(tc.sp); got != tc.want {
			t.Errorf("Format = %q, want %q", got, tc.want)
		}
	}
}

// screen replays what a terminal shows from the bytes written to it: a
// carriage return and erase-line rewrite the current line.
func screen(out string) []string {
	var lines []string
	cur := ""
	for len(out) > 0 {
		switch {
		case strings.HasPrefix(out, clear):
			cur, out = "", out[len(clear):]
		case out[0] == '\n':
			lines, cur, out = append(lines, cur), "", out[1:]
		default:
			cur, out = cur+out[:1], out[1:]
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// TestTerminal: a step is one line rewritten in place; when it ends its
// last state stays; a log line written meanwhile goes above the line
// under way, which is drawn again.
func TestTerminal(t *testing.T) {
	var out bytes.Buffer
	term := NewTerminal(&out)
	sp := reconciler.StepProgress{Action: reconciler.ActWatch, Target: "web/green", Limit: time.Minute, Counted: true}
	for i := 0; i <= 3; i++ {
		sp.Elapsed = time.Duration(i) * 5 * time.Second
		sp.Traffic.Requests = 100 * i
		term.Update(sp)
		if i == 1 {
			if _, err := term.Write([]byte("12:00:05.000\tINFO\tsomething happened\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := screen(out.String()); len(got) != 2 || got[0] != "12:00:05.000\tINFO\tsomething happened" || got[1] != "watch web/green 15s / 1m · 300 req · 0.0 % 5xx" {
		t.Fatalf("screen during the step:\n%q", got)
	}
	term.Done(sp)
	term.Write([]byte("after\n"))
	want := []string{"12:00:05.000\tINFO\tsomething happened", "watch web/green 15s / 1m · 300 req · 0.0 % 5xx", "after"}
	if got := screen(out.String()); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("screen after the step:\n%q\nwant\n%q", got, want)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Errorf("%d newlines for 4 updates, a log line, a done and a log line; want 3 (the updates rewrite one line)", n)
	}
}

// TestLog: a step's progress is logged every Every of its time, not on
// each update; another step has its own period.
func TestLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l := &Log{Log: zap.New(core), Every: 10 * time.Second}
	watch := reconciler.StepProgress{Action: reconciler.ActWatch, Target: "web/green", Limit: time.Minute, Counted: true}
	for e := time.Duration(0); e <= time.Minute; e += 2 * time.Second {
		watch.Elapsed = e
		watch.Traffic = reconciler.Traffic{Requests: int(e / time.Second), Errors: 0}
		l.Update(watch)
	}
	l.Done(watch)
	drain := reconciler.StepProgress{Action: reconciler.ActDrain, Target: "web/blue", Limit: 15 * time.Second}
	for e := time.Second; e <= 15*time.Second; e += time.Second {
		drain.Elapsed = e
		l.Update(drain)
	}
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Message)
	}
	want := []string{
		"watch web/green 10s / 1m · 10 req · 0.0 % 5xx", "watch web/green 20s / 1m · 20 req · 0.0 % 5xx",
		"watch web/green 30s / 1m · 30 req · 0.0 % 5xx", "watch web/green 40s / 1m · 40 req · 0.0 % 5xx",
		"watch web/green 50s / 1m · 50 req · 0.0 % 5xx", "watch web/green 1m / 1m · 60 req · 0.0 % 5xx",
		"drain web/blue 10s / 15s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f := logs.All()[0].ContextMap(); f["requests"] != int64(10) || f["step"] != "watch" {
		t.Errorf("fields %v, want requests and step", f)
	}
}
