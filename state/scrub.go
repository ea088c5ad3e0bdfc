package state

import (
	"sort"
	"strings"
)

// Scrubbed is what a Scrubber puts in place of a secret value.
const Scrubbed = "[secret]"

// Scrubber removes known secret values from text: whatever produced the
// text (an engine's error quoting an environment variable, an HTTP error
// quoting a notify URL), the value does not reach a log, a record or a
// payload. The zero value and nil scrub nothing.
type Scrubber struct {
	values []string // longest first, so a value that contains another goes whole
}

// NewScrubber scrubs values; empty ones are ignored.
func NewScrubber(values ...string) *Scrubber {
	seen := map[string]bool{}
	s := &Scrubber{}
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			s.values = append(s.values, v)
		}
	}
	sort.Slice(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
	return s
}

// Scrub returns text with every secret value replaced by Scrubbed.
func (s *Scrubber) Scrub(text string) string {
	if s == nil {
		return text
	}
	for _, v := range s.values {
		text = strings.ReplaceAll(text, v, Scrubbed)
	}
	return text
}

// Error returns err with a scrubbed message; errors.Is and errors.As still
// see err. nil stays nil.
func (s *Scrubber) Error(err error) error {
	if err == nil || s == nil || len(s.values) == 0 {
		return err
	}
	return &scrubbedError{msg: s.Scrub(err.Error()), err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// Scrubber scrubs every secret value d holds: the services' and the
// migrations' secrets and the notify URLs (which may hold a token, and
// which HTTP errors quote).
func (d *Desired) Scrubber() *Scrubber {
	var vals []string
	for _, s := range d.Services {
		for _, v := range s.Spec.Secrets {
			vals = append(vals, v)
		}
	}
	if m := d.Migrations; m != nil {
		for _, v := range m.Spec.Secrets {
			vals = append(vals, v)
		}
	}
	for _, n := range d.Notify {
		vals = append(vals, n.URL)
	}
	return NewScrubber(vals...)
}
