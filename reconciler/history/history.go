// Package history keeps the record of every deploy attempt of an
// environment in an append-only JSON-lines file, one record per line,
// fsynced before Append returns. A crash can at worst tear the last line;
// readers skip a torn line and the next writer cuts it off, so a kill -9
// never loses a completed record. Readers need no lock: they may read while
// the agent appends.
package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Results of a deploy attempt.
const (
	Succeeded   = "succeeded"   // the host converged to the commit
	Failed      = "failed"      // validation, plan or apply failed; not retried
	Refused     = "refused"     // signature verification refused the commit; nothing changed
	Interrupted = "interrupted" // the agent was stopped mid-deploy at a safe point; retried on start
	Transient   = "transient"   // git or Docker unreachable; retried with backoff
)

// Record is one deploy attempt.
type Record struct {
	Env     string    `json:"env"`
	Commit  string    `json:"commit"`
	Author  string    `json:"author,omitempty"`
	Message string    `json:"message,omitempty"`
	Trigger string    `json:"trigger,omitempty"` // start, poll, webhook, heal (the agent); apply
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Result  string    `json:"result"`
	// Steps are the planned changes with their steps, in order.
	Steps []string `json:"steps,omitempty"`
	Error string   `json:"error,omitempty"`
	// RolledBack is true when a failed change was undone (traffic kept on,
	// or switched back to, the version that served before).
	RolledBack bool `json:"rolledBack,omitempty"`
	// Requests and Errors are what nginx served the new colors while the
	// deploy watched them (bake, canary steps), and how many of those
	// answered 5xx.
	Requests int `json:"requests,omitempty"`
	Errors   int `json:"errors,omitempty"`
	// StreamsCut is how many busy connections of old colors (streams,
	// requests in flight) the deploy's drains cut at their deadline.
	StreamsCut int `json:"streamsCut,omitempty"`
	// P95Before and P95After are the 95th percentile response times in the
	// access logs of the deploy's watched sites: over the window before the
	// deploy began, and from its start to its end. Zero when no request
	// was logged (see docs/operations.md, "Deploy metrics").
	P95Before time.Duration `json:"p95Before,omitempty"`
	P95After  time.Duration `json:"p95After,omitempty"`
}

// TriggerApply is the trigger of the records reconciler apply writes.
const TriggerApply = "apply"

// Stats summarizes the deploy attempts of a window.
type Stats struct {
	// Deploys counts the attempts that ran to an outcome: succeeded,
	// failed or refused. Transient and interrupted attempts are retried and
	// drift repairs (trigger heal) are not deploys: neither is counted.
	Deploys    int
	Succeeded  int
	Failed     int // failed or refused
	RolledBack int
}

// SuccessRate is Succeeded/Deploys, 0 without deploys.
func (s Stats) SuccessRate() float64 { return ratio(s.Succeeded, s.Deploys) }

// RollbackRate is RolledBack/Deploys, 0 without deploys.
func (s Stats) RollbackRate() float64 { return ratio(s.RolledBack, s.Deploys) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Summarize counts the records that started at or after since (all of them
// for a zero since).
func Summarize(recs []Record, since time.Time) Stats {
	var s Stats
	for _, r := range recs {
		if r.Start.Before(since) || r.Trigger == "heal" { // agent.TriggerHeal
			continue
		}
		switch r.Result {
		case Succeeded:
			s.Succeeded++
		case Failed, Refused:
			s.Failed++
		default:
			continue
		}
		s.Deploys++
		if r.RolledBack {
			s.RolledBack++
		}
	}
	return s
}

// Store is the history file of one environment. Append is safe for
// concurrent use.
type Store struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// Open opens (creating it) the history file at path for appending. A torn
// last line, left by a crash during a write, is cut off first.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create history dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	if err := cutTorn(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("repair history %s: %w", path, err)
	}
	return &Store{path: path, f: f}, nil
}

// cutTorn truncates f after its last newline.
func cutTorn(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	// Records are small; look back in chunks for the last newline.
	const chunk = 64 << 10
	end := size
	for end > 0 {
		start := max(0, end-chunk)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			keep := start + int64(i) + 1
			if keep == size {
				return nil
			}
			return truncate(f, keep)
		}
		end = start
	}
	return truncate(f, 0)
}

func truncate(f *os.File, n int64) error {
	if err := f.Truncate(n); err != nil {
		return err
	}
	return f.Sync()
}

// Append writes r as one line and fsyncs the file before returning.
func (s *Store) Append(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode history record: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	// One write at the end of the file: a reader sees a whole line, a torn
	// one (skipped), or nothing.
	if _, err := s.f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	if _, err := s.f.Write(b); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync history: %w", err)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.f.Close() }

// Read returns every complete record of the file at path, oldest first,
// and how many lines it skipped (a torn last line, or a line that is not
// a record). A missing file is an empty history.
func Read(path string) ([]Record, int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	var out []Record
	skipped := 0
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var r Record
			// A line without its newline is being written or was torn.
			if line[len(line)-1] != '\n' || json.Unmarshal(line, &r) != nil {
				skipped++
			} else {
				out = append(out, r)
			}
		}
		if errors.Is(err, io.EOF) {
			return out, skipped, nil
		}
		if err != nil {
			return out, skipped, fmt.Errorf("read history: %w", err)
		}
	}
}
