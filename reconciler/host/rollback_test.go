package host

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/statedir"
)

// TestSyncPaused: a rollback's pause holds the rolled-back commit and the
// tip it saw; another commit (the revert) lifts it, as resume does.
func TestSyncPaused(t *testing.T) {
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &Syncer{Env: "p1", Dir: dir, Log: zap.NewNop()}
	if err := s.paused("c2"); err != nil {
		t.Fatalf("no pause: %v", err)
	}
	if err := dir.SetPause("p1", statedir.Pause{Release: "c2", Tip: "c3", Previous: "c1", At: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"c2", "c3"} {
		if err := s.paused(c); !errors.Is(err, ErrPaused) {
			t.Fatalf("sync of %s while paused: %v, want ErrPaused", c, err)
		}
	}
	if err := s.paused("c4"); err != nil {
		t.Fatalf("sync of the revert: %v", err)
	}
	if p, _ := dir.Paused("p1"); p != nil {
		t.Fatalf("pause after a new commit: %+v, want none", p)
	}
	if err := s.paused("c2"); err != nil {
		t.Fatalf("the pause came back: %v", err)
	}
}
