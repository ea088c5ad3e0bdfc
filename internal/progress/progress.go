// Package progress shows the executor's reports of its long steps
// (reconciler.Progress): on an interactive terminal as one updating line
// per step (Terminal), elsewhere (CI, the agent, JSON logs) as a log line
// every so often (Log). The core only reports; what is shown, and how
// often, is decided here.
package progress

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/developer-mesh/reconciler/reconciler"
)

// DefaultEvery is how often Log writes a line for a step under way.
const DefaultEvery = 10 * time.Second

// Format is the one-line form of a step's progress, the same on a terminal
// and in a log:
//
//	watch web/green 2m10s / 5m · 1,204 req · 0.2 % 5xx
//	pull ghcr.io/…:v1.4.3 120 MB / 210 MB
//	wait-healthy web/green 4s / 1m · 1/2 passes
//	drain web/blue 12s / 30s
func Format(sp reconciler.StepProgress) string {
	var b strings.Builder
	b.WriteString(string(sp.Action))
	b.WriteString(" ")
	if sp.Action == reconciler.ActPull {
		b.WriteString(shortRef(sp.Target))
		b.WriteString(" " + megabytes(sp.Bytes))
		if sp.Total > 0 {
			b.WriteString(" / " + megabytes(sp.Total))
		}
		return b.String()
	}
	b.WriteString(sp.Target)
	el := sp.Elapsed.Truncate(time.Second)
	if sp.Elapsed < time.Second {
		el = sp.Elapsed.Round(100 * time.Millisecond) // a short drain: 500ms, not 0s
	}
	b.WriteString(" " + duration(el))
	if sp.Limit > 0 {
		b.WriteString(" / " + duration(sp.Limit))
	}
	switch {
	case sp.Action == reconciler.ActWatch && sp.Counted:
		rate := 0.0
		if sp.Traffic.Requests > 0 {
			rate = 100 * float64(sp.Traffic.Errors) / float64(sp.Traffic.Requests)
		}
		fmt.Fprintf(&b, " · %s req · %.1f %% 5xx", thousands(sp.Traffic.Requests), rate)
	case sp.Action == reconciler.ActWaitHealthy && sp.Want > 0:
		fmt.Fprintf(&b, " · %d/%d passes", sp.Passes, sp.Want)
	case sp.Action == reconciler.ActSettle && sp.Want > 0:
		fmt.Fprintf(&b, " · %d/%d checks", sp.Passes, sp.Want)
	}
	return b.String()
}

// duration writes d without trailing zero units: 5m, 2m10s, 1h30m.
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// megabytes writes n bytes in MB (10^6), as the Docker CLI does.
func megabytes(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d MB", (n+5e5)/1e6)
}

// thousands writes n with a comma between thousands: 1,204.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// shortRef shortens a long image reference to its registry and its tag:
// ghcr.io/…:v1.4.3 (or @sha256:0123456789ab…).
func shortRef(ref string) string {
	const max = 32
	if len(ref) <= max {
		return ref
	}
	host, _, _ := strings.Cut(ref, "/")
	if i := strings.Index(ref, "@"); i >= 0 {
		d := ref[i:]
		if len(d) > 20 {
			d = d[:20] + "…"
		}
		return host + "/…" + d
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return host + "/…" + ref[i:]
	}
	return ref[:max] + "…"
}

// Terminal shows each step under way as one line that it rewrites in
// place, and leaves the step's last line when it ends. Log output written
// through it (Write) clears the line first and redraws it after, so the
// two do not mix. It is safe for concurrent use.
type Terminal struct {
	mu   sync.Mutex
	w    io.Writer
	line string // shown, without its newline; "" when none
}

// NewTerminal returns a Terminal writing to w, an interactive terminal.
func NewTerminal(w io.Writer) *Terminal { return &Terminal{w: w} }

// clear is the carriage return and erase-line sequence.
const clear = "\r\x1b[K"

// Update implements reconciler.Progress: the step's line, rewritten.
func (t *Terminal) Update(sp reconciler.StepProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	line := Format(sp)
	if line == t.line {
		return
	}
	t.line = line
	fmt.Fprint(t.w, clear+line)
}

// Done implements reconciler.Progress: the step's last line stays.
func (t *Terminal) Done(sp reconciler.StepProgress) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprint(t.w, clear+Format(sp)+"\n")
	t.line = ""
}

// Write writes p (log lines) above the line under way.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.line == "" {
		return t.w.Write(p)
	}
	if _, err := io.WriteString(t.w, clear); err != nil {
		return 0, err
	}
	n, err := t.w.Write(p)
	if err == nil {
		_, err = io.WriteString(t.w, t.line)
	}
	return n, err
}

// Log writes a step's progress as an info log line once Every of the
// step's time has passed, then every Every (DefaultEvery when 0): the
// same facts as Terminal, for a run nobody watches live.
type Log struct {
	Log   *zap.Logger
	Every time.Duration

	mu   sync.Mutex
	next map[string]time.Duration // by step: when its next line is due
}

// Update implements reconciler.Progress.
func (l *Log) Update(sp reconciler.StepProgress) {
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	key := string(sp.Action) + " " + sp.Target
	l.mu.Lock()
	if l.next == nil {
		l.next = map[string]time.Duration{}
	}
	due, ok := l.next[key]
	if !ok {
		due = every
	}
	if sp.Elapsed < due {
		l.next[key] = due
		l.mu.Unlock()
		return
	}
	l.next[key] = sp.Elapsed - sp.Elapsed%every + every
	l.mu.Unlock()
	l.Log.Info(Format(sp), fields(sp)...)
}

// Done implements reconciler.Progress: the step's own log line says it
// ended; Log forgets it.
func (l *Log) Done(sp reconciler.StepProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.next, string(sp.Action)+" "+sp.Target)
}

// fields are the facts of sp as structured log fields.
func fields(sp reconciler.StepProgress) []zap.Field {
	f := []zap.Field{zap.String("step", string(sp.Action)), zap.String("target", sp.Target), zap.Duration("elapsed", sp.Elapsed)}
	if sp.Limit > 0 {
		f = append(f, zap.Duration("limit", sp.Limit))
	}
	switch {
	case sp.Action == reconciler.ActPull:
		f = append(f, zap.Int64("bytes", sp.Bytes), zap.Int64("totalBytes", sp.Total))
	case sp.Counted:
		f = append(f, zap.Int("requests", sp.Traffic.Requests), zap.Int("errors", sp.Traffic.Errors))
	case sp.Want > 0:
		f = append(f, zap.Int("passes", sp.Passes), zap.Int("want", sp.Want))
	}
	return f
}

// IsTerminal reports whether w is an interactive terminal, where
// Terminal's updating line makes sense (not a pipe, a file or /dev/null).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

var (
	_ reconciler.Progress = (*Terminal)(nil)
	_ reconciler.Progress = (*Log)(nil)
)
