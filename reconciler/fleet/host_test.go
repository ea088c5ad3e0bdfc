package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/state"
)

// TestHostFlag: an agent without --host, or with one that is not in
// fleet.hosts, deploys nothing and waits (agent.ErrWait: no failed attempt
// is recorded, so the commit deploys once the agent runs with a right
// --host); --host for an env without a fleet deploys on its own and says
// so once.
func TestHostFlag(t *testing.T) {
	withFleet := &state.Env{Environment: "i18h", Fleet: &state.Fleet{Store: "redis://127.0.0.1:1", Hosts: []string{"h1", "h2"}, Parallel: 1}}
	for _, tc := range []struct{ host, want string }{
		{"", "envs/i18h.yaml has a fleet (hosts h1, h2): run the agent with --host NAME; deploying nothing"},
		{"h9", "--host h9 is not one of fleet.hosts of envs/i18h.yaml at c1 (h1, h2); deploying nothing"},
	} {
		inner := 0
		g := &Gate{Env: "i18h", Host: tc.host,
			Load: func(agent.Revision) (*state.Env, error) { return withFleet, nil },
			Open: func(context.Context, *state.Env) (Store, error) {
				t.Fatal("the store is opened")
				return nil, nil
			},
			Inner: func(context.Context, agent.Revision, agent.Mode) (agent.Outcome, error) {
				inner++
				return agent.Outcome{}, nil
			}}
		for _, mode := range []agent.Mode{agent.Deploy, agent.Heal} {
			_, err := g.Sync(context.Background(), agent.Revision{Hash: "c1"}, mode)
			if !errors.Is(err, agent.ErrWait) || err.Error() != tc.want {
				t.Errorf("--host %q, mode %v: err = %v; want a wait: %s", tc.host, mode, err, tc.want)
			}
		}
		if inner != 0 {
			t.Errorf("--host %q: the host deployed", tc.host)
		}
		if w := g.Status().Waiting; w != tc.want {
			t.Errorf("--host %q: status waiting %q", tc.host, w)
		}
	}

	core, logs := observer.New(zap.InfoLevel)
	inner := 0
	g := &Gate{Env: "i18h", Host: "h1", Log: zap.New(core),
		Load: func(agent.Revision) (*state.Env, error) { return &state.Env{Environment: "i18h"}, nil },
		Inner: func(context.Context, agent.Revision, agent.Mode) (agent.Outcome, error) {
			inner++
			return agent.Outcome{}, nil
		}}
	for range 2 {
		if _, err := g.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy); err != nil {
			t.Fatal(err)
		}
	}
	if inner != 2 {
		t.Errorf("no fleet: the host deployed %d times, want 2", inner)
	}
	var said int
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "no fleet section") {
			said++
		}
	}
	if said != 1 {
		t.Errorf("no fleet: said %d times that --host is set, want once", said)
	}
}
