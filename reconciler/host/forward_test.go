package host

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

func TestCheckForward(t *testing.T) {
	t.Parallel()
	// History: a ← b ← c (c the newest); x is unknown to the repository.
	ancestors := map[string]map[string]bool{"c": {"a": true, "b": true}, "b": {"a": true}, "a": {}}
	src := func(hash string) Source {
		return Source{Hash: hash, Contains: func(h string) (bool, error) {
			if _, ok := ancestors[h]; !ok {
				return false, fmt.Errorf("%s: %w", h, ErrUnknownCommit)
			}
			return h == hash || ancestors[hash][h], nil
		}}
	}
	running := func(commits ...string) *state.Observed {
		o := &state.Observed{}
		for i, c := range commits {
			o.Containers = append(o.Containers, state.Container{Name: fmt.Sprintf("e-s%d-blue", i), Commit: c})
		}
		return o
	}
	for _, tc := range []struct {
		name, deploy string
		runs         []string
		want         string // "" for no error
	}{
		{"forward", "c", []string{"b", "a"}, ""},
		{"same", "b", []string{"b"}, ""},
		{"empty host", "a", nil, ""},
		{"back", "a", []string{"b"}, "e-s0-blue runs b, which a does not contain"},
		{"unknown", "c", []string{"x"}, "e-s0-blue runs x, which is not in the repository's history"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckForward(src(tc.deploy), running(tc.runs...))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.want != "" && (!errors.Is(err, ErrNotForward) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v; want ErrNotForward with %q", err, tc.want)
			}
		})
	}
}
