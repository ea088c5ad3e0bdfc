package statedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/developer-mesh/reconciler/internal/atomicfile"
)

// Pause is what reconciler rollback leaves for the agent: the commits it
// must not deploy (the release rolled back, and the branch's tip when the
// rollback ran) until another commit lands or an operator resumes.
type Pause struct {
	// Release is the commit rolled back; Tip the branch's tip at the
	// time (often the same); Previous the commit that serves again.
	Release  string    `json:"release"`
	Tip      string    `json:"tip,omitempty"`
	Previous string    `json:"previous"`
	At       time.Time `json:"at"`
}

// Holds reports whether the pause forbids deploying commit.
func (p *Pause) Holds(commit string) bool {
	return p != nil && commit != "" && (commit == p.Release || commit == p.Tip)
}

func (d *Dir) pausePath(env string) string { return filepath.Join(d.path, env+".paused") }

// Paused returns env's pause, nil when it has none.
func (d *Dir) Paused(env string) (*Pause, error) {
	b, err := os.ReadFile(d.pausePath(env))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pause: %w", err)
	}
	var p Pause
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("read pause %s: %w", d.pausePath(env), err)
	}
	return &p, nil
}

// SetPause records p as env's pause, atomically.
func (d *Dir) SetPause(env string, p Pause) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(d.pausePath(env), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record pause: %w", err)
	}
	return nil
}

// Unpause removes env's pause and returns the one it removed (nil when
// there was none).
func (d *Dir) Unpause(env string) (*Pause, error) {
	p, err := d.Paused(env)
	if err != nil || p == nil {
		return p, err
	}
	if err := os.Remove(d.pausePath(env)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("resume: %w", err)
	}
	return p, nil
}
