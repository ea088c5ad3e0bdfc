// Package fleet orders and fences the rollout of a commit across the hosts
// of one environment, one agent per host, through a coordination store the
// team already runs: no consensus of our own.
//
// Before a host deploys commit C, its agent (through Gate) checks that every
// host before it in the fleet's order has applied C (and that the canary
// baked), takes one of the env's rollout leases (a TTL, renewed while it
// works, and a fencing token), deploys, records its result with the token,
// and releases the lease. A host that fails C records a halt for C, which
// keeps the hosts after it on the commit they run; a newer commit clears it.
//
// The store is an interface (Store); reconciler/fleet/redisstore is the
// Redis adapter. The package does no Docker, git or nginx work.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// Results a host records.
const (
	Succeeded = "succeeded"
	Failed    = "failed"
)

// ErrHeld is returned by Store.Acquire when every lease slot is held.
var ErrHeld = errors.New("rollout lease held")

// ErrLost is returned by Store.Renew and Store.Record when the lease is no
// longer the caller's (it expired, and maybe another holder took it): the
// fencing token did not match, and nothing was written.
var ErrLost = errors.New("rollout lease lost")

// ErrAuth wraps an error of Gate.Open or Gate.OpenEnv that came before
// any connection: the store's password (fleet.auth) could not be read. The
// Gate says so rather than calling the store unreachable.
var ErrAuth = errors.New("the coordination store's password (fleet.auth) was not read")

// Lease is one held slot of an env's rollout lease.
type Lease struct {
	// Slot is the slot, 0 to parallel-1.
	Slot int `json:"slot"`
	// Token is the fencing token: it grows with every lease taken in the
	// env, and every record written under the lease is checked against it.
	Token int64 `json:"token"`
	// Holder names the holder: host/pid.
	Holder string `json:"holder"`
	// Expires is when the lease ends unless renewed (in a Snapshot only).
	Expires time.Time `json:"expires,omitzero"`
}

// Result is the outcome of one host's deploy of one commit.
type Result struct {
	Host   string    `json:"host"`
	Commit string    `json:"commit"`
	Result string    `json:"result"` // Succeeded or Failed
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
	Token  int64     `json:"token"`
}

// Health is a host's heartbeat: what it runs and whether it is healthy. It
// expires when the agent stops sending it.
type Health struct {
	Host    string    `json:"host"`
	Commit  string    `json:"commit"`
	Healthy bool      `json:"healthy"`
	Problem string    `json:"problem,omitempty"`
	At      time.Time `json:"at"`
	// Since is when the host started running Commit healthy without a
	// break, as its agent saw it (zero when unhealthy): a bake measured
	// from heartbeats (the store lost the results) counts from it, not
	// from At, which every heartbeat moves.
	Since time.Time `json:"since,omitzero"`
}

// healthySince is when h says its host started running commit healthy:
// Since, or At from a heartbeat without it.
func (h *Health) healthySince() time.Time {
	if !h.Since.IsZero() {
		return h.Since
	}
	return h.At
}

// Halt stops the rollout of Commit: Host failed it.
type Halt struct {
	Commit string    `json:"commit"`
	Host   string    `json:"host"`
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`
}

// HostState is what the store holds about one host.
type HostState struct {
	// Applied is the host's last Succeeded result (zero when none).
	Applied Result `json:"applied,omitzero"`
	// Last is the host's last result, Succeeded or Failed.
	Last Result `json:"last,omitzero"`
	// Health is the host's heartbeat; nil when it expired (the agent is
	// down or cannot reach the store).
	Health *Health `json:"health,omitempty"`
}

// Runs reports whether the host succeeded with commit: its recorded
// result, or its heartbeat saying it runs commit healthy. The heartbeat
// counts so that a store that lost its data (a failover without
// persistence) does not stall a rollout on hosts that deployed before the
// loss and have nothing left to record.
func (h HostState) Runs(commit string) bool {
	return h.Applied.Commit == commit || (h.Health != nil && h.Health.Commit == commit && h.Health.Healthy)
}

// Snapshot is the fleet as the store holds it at one moment.
type Snapshot struct {
	Hosts  map[string]HostState `json:"hosts"`
	Leases []Lease              `json:"leases"`
	Halt   *Halt                `json:"halt,omitempty"`
}

// Store is the coordination store of one environment.
type Store interface {
	// Acquire takes a free slot of the rollout lease (slots slots in all)
	// for ttl with a new fencing token. It returns ErrHeld when every slot
	// is held.
	Acquire(ctx context.Context, holder string, slots int, ttl time.Duration) (Lease, error)
	// Renew extends l by ttl; ErrLost when l is no longer held.
	Renew(ctx context.Context, l Lease, ttl time.Duration) error
	// Release gives l back; a lease no longer held is not an error.
	Release(ctx context.Context, l Lease) error
	// Record writes r as its host's last result, and as its applied
	// commit when it succeeded, only while l is held (else ErrLost and
	// nothing is written). A failed r also writes the halt of r.Commit; a
	// succeeded r of another commit than the halt's clears the halt.
	Record(ctx context.Context, l Lease, r Result) error
	// Beat writes h as its host's heartbeat, for ttl.
	Beat(ctx context.Context, h Health, ttl time.Duration) error
	// Snapshot reads the state of hosts and of slots lease slots.
	Snapshot(ctx context.Context, hosts []string, slots int) (Snapshot, error)
}

// Turn says why host may not start deploying commit in fleet f yet, ""
// when it may: the halt of commit by another host, a host at least
// f.Parallel places before it that has not applied commit, or a canary
// that has not run commit healthy for f.CanaryBake. host must be one of
// f.Hosts.
func Turn(f *state.Fleet, host, commit string, s Snapshot, now time.Time) string {
	short := state.ShortHash(commit)
	if h := s.Halt; h != nil && h.Commit == commit && h.Host != host {
		return fmt.Sprintf("the rollout of %s is halted: host %s failed it (%s); this host stays on the commit it runs until a newer commit is pushed", short, h.Host, h.Error)
	}
	i := f.Index(host)
	var waiting []string
	for j := 0; j <= i-f.Parallel; j++ {
		if !s.Hosts[f.Hosts[j]].Runs(commit) {
			waiting = append(waiting, f.Hosts[j])
		}
	}
	if len(waiting) > 0 {
		return fmt.Sprintf("waiting for %s to deploy %s first", hostList(waiting), short)
	}
	if f.Canary == "" || i == 0 {
		return ""
	}
	c := s.Hosts[f.Canary]
	switch {
	case !c.Runs(commit):
		return fmt.Sprintf("waiting for the canary %s to deploy %s first", f.Canary, short)
	case c.Health == nil || c.Health.Commit != commit:
		return fmt.Sprintf("waiting for the canary %s to report its health on %s", f.Canary, short)
	case !c.Health.Healthy:
		return fmt.Sprintf("the canary %s is unhealthy on %s (%s); waiting", f.Canary, short, c.Health.Problem)
	}
	since := c.Applied.At
	if c.Applied.Commit != commit {
		// Known from its heartbeat only: the bake counts from when
		// the canary started running the commit healthy.
		since = c.Health.healthySince()
	}
	if until := since.Add(f.CanaryBake.D()); now.Before(until) {
		return fmt.Sprintf("the canary %s bakes %s until %s", f.Canary, short, until.UTC().Format(time.RFC3339))
	}
	return ""
}

func hostList(hs []string) string {
	if len(hs) == 1 {
		return "host " + hs[0]
	}
	return "hosts " + strings.Join(hs, ", ")
}

// RegionTurn says why the region after env prev may not start commit yet,
// "" when it may: every host of prev (whose fleet is f) must have run
// commit healthy, as its heartbeat says, for f's next region's bake, from
// the latest of their applied results (or heartbeats, when the store lost
// the results). bake is the fleet.afterBake of the region that waits.
func RegionTurn(prev string, f *state.Fleet, commit string, bake time.Duration, s Snapshot, now time.Time) string {
	short := state.ShortHash(commit)
	if h := s.Halt; h != nil && h.Commit == commit {
		return fmt.Sprintf("the rollout of %s is halted in %s: host %s failed it (%s); this region stays on the commit it runs", short, prev, h.Host, h.Error)
	}
	var since time.Time
	var waiting, unhealthy []string
	for _, name := range f.Hosts {
		h := s.Hosts[name]
		switch {
		case !h.Runs(commit):
			waiting = append(waiting, name)
			continue
		case h.Health == nil || h.Health.Commit != commit || !h.Health.Healthy:
			unhealthy = append(unhealthy, name)
			continue
		}
		at := h.Applied.At
		if h.Applied.Commit != commit {
			at = h.Health.healthySince()
		}
		if at.After(since) {
			since = at
		}
	}
	switch {
	case len(waiting) > 0:
		return fmt.Sprintf("waiting for region %s to deploy %s first (%s)", prev, short, hostList(waiting))
	case len(unhealthy) > 0:
		return fmt.Sprintf("waiting for region %s to report %s healthy (%s)", prev, short, hostList(unhealthy))
	}
	if until := since.Add(bake); now.Before(until) {
		return fmt.Sprintf("region %s bakes %s until %s", prev, short, until.UTC().Format(time.RFC3339))
	}
	return ""
}
