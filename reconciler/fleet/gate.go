package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/state"
)

// SyncFunc is agent.Config.Sync.
type SyncFunc func(ctx context.Context, rev agent.Revision, mode agent.Mode) (agent.Outcome, error)

// Gate puts a host's agent in its env's fleet: its Sync wraps the host's
// Sync (host.Syncer.Sync). A deploy of a new commit waits for the host's
// turn and runs under a lease; its result is recorded. Drift checks and
// repairs of the applied commit run as before, whatever the store says,
// and report the host's health to it.
type Gate struct {
	// Env and Host name the environment and this host (--host).
	Env, Host string
	// Load returns the env file of rev (the fleet section of the commit
	// being deployed orders its rollout).
	Load func(rev agent.Revision) (*state.Env, error)
	// Open connects to the store of e.Fleet (the password from its auth,
	// resolved with e's aws settings). The Gate keeps the store while the
	// fleet's store, auth and username and e's aws settings stay the same.
	Open func(ctx context.Context, e *state.Env) (Store, error)
	// LoadEnv returns the env file of another env at rev: the region
	// before this one (fleet.after). Needed only with fleet.after.
	LoadEnv func(rev agent.Revision, env string) (*state.Env, error)
	// OpenEnv connects to the store of another env e's fleet (with e's
	// aws settings), for reading its hosts (fleet.after); the Gate closes
	// it when done, when it has a Close method. Needed only with
	// fleet.after.
	OpenEnv func(ctx context.Context, e *state.Env) (Store, error)
	// Inner is the host's own Sync.
	Inner SyncFunc
	// HealthTTL is how long a heartbeat lives: a few poll or drift check
	// periods. Default 3m.
	HealthTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	Log *zap.Logger

	noFleet  sync.Once // said that --host is set for an env without a fleet
	mu       sync.Mutex
	store    Store
	storeKey string
	st       Status
	// healthy is since when this host runs healthyCommit healthy without
	// a break (zero after an unhealthy check), for Health.Since.
	healthy       time.Time
	healthyCommit string
}

// Status is this host's view of its fleet, for /status and metrics.
type Status struct {
	Host string `json:"host"`
	// StoreError is why the store did not answer last time, "" when it did.
	StoreError string `json:"storeError,omitempty"`
	// Waiting is why the host does not deploy the desired commit (its
	// turn, a halt, the store), "" when it does not wait.
	Waiting string `json:"waiting,omitempty"`
	// Halted is true while Waiting is a halt of the desired commit.
	Halted bool `json:"halted,omitempty"`
	// Lease is the lease this host holds while it deploys.
	Lease *Lease `json:"lease,omitempty"`
	// Fleet is the store's view, as last read.
	Fleet *Snapshot `json:"fleet,omitempty"`
	// Hosts are the fleet's hosts in rollout order.
	Hosts []string `json:"hosts,omitempty"`
}

// Status returns a copy of the gate's status.
func (g *Gate) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.st
	s.Host = g.Host
	return s
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Gate) log() *zap.Logger {
	if g.Log == nil {
		return zap.NewNop()
	}
	return g.Log
}

// holder names this process in the store.
func (g *Gate) holder() string { return g.Host + "/" + strconv.Itoa(os.Getpid()) }

// Sync implements agent.Config.Sync.
func (g *Gate) Sync(ctx context.Context, rev agent.Revision, mode agent.Mode) (agent.Outcome, error) {
	e, err := g.Load(rev)
	if err != nil || e.Fleet == nil {
		if err == nil && g.Host != "" {
			// --host may come before the fleet section (each agent gets
			// it first, then the env file names the hosts): said once.
			g.noFleet.Do(func() {
				g.log().Info("--host is set but the env file has no fleet section: this host deploys on its own", zap.String("commit", state.ShortHash(rev.Hash)))
			})
		}
		if err == nil {
			// No fleet (any more): nothing of an older commit's fleet
			// stays in /status or the metrics.
			g.mu.Lock()
			g.st = Status{}
			g.mu.Unlock()
		}
		// Bad input fails in the host's own Sync, with its errors; an env
		// without a fleet is one host.
		return g.Inner(ctx, rev, mode)
	}
	f := e.Fleet
	// A missing or unknown --host is this agent's setting, not the
	// commit's fault: it waits (no failed attempt, so the commit deploys
	// once the agent runs with a --host of fleet.hosts).
	if g.Host == "" {
		return agent.Outcome{}, g.wait(fmt.Errorf("envs/%s.yaml has a fleet (hosts %s): run the agent with --host NAME; deploying nothing", g.Env, strings.Join(f.Hosts, ", ")), false)
	}
	if f.Index(g.Host) < 0 {
		return agent.Outcome{}, g.wait(fmt.Errorf("--host %s is not one of fleet.hosts of envs/%s.yaml at %s (%s); deploying nothing", g.Host, g.Env, state.ShortHash(rev.Hash), strings.Join(f.Hosts, ", ")), false)
	}
	st, err := g.openStore(ctx, e)
	if mode != agent.Deploy {
		out, serr := g.Inner(ctx, rev, mode)
		if err == nil {
			g.beat(ctx, st, f, rev, out, serr)
		}
		return out, serr
	}
	if errors.Is(err, ErrAuth) {
		return agent.Outcome{}, g.wait(fmt.Errorf("%w; deploying nothing new, serving the applied commit", err), false)
	}
	if err != nil {
		return agent.Outcome{}, g.wait(fmt.Errorf("coordination store unreachable: deploying nothing new, serving the applied commit: %w", err), false)
	}
	snap, err := st.Snapshot(ctx, f.Hosts, f.Parallel)
	g.setSnapshot(f, snap, err)
	if err != nil {
		return agent.Outcome{}, g.wait(fmt.Errorf("coordination store unreachable: deploying nothing new, serving the applied commit: %w", err), false)
	}
	if f.After != "" {
		if why := g.RegionTurn(ctx, rev, f); why != "" {
			return agent.Outcome{}, g.wait(errors.New(why), false)
		}
	}
	if why := Turn(f, g.Host, rev.Hash, snap, g.now()); why != "" {
		halted := snap.Halt != nil && snap.Halt.Commit == rev.Hash
		return agent.Outcome{}, g.wait(errors.New(why), halted)
	}
	ttl := f.LeaseTTL.D()
	lease, err := st.Acquire(ctx, g.holder(), f.Parallel, ttl)
	if errors.Is(err, ErrHeld) {
		return agent.Outcome{}, g.wait(fmt.Errorf("waiting for the rollout lease, held by %s", holders(snap)), false)
	}
	if err != nil {
		g.setStoreErr(err)
		return agent.Outcome{}, g.wait(fmt.Errorf("coordination store unreachable: deploying nothing new, serving the applied commit: %w", err), false)
	}
	g.mu.Lock()
	g.st.Waiting, g.st.Halted, g.st.Lease = "", false, &lease
	g.mu.Unlock()
	log := g.log().With(zap.String("commit", state.ShortHash(rev.Hash)), zap.Int64("token", lease.Token))
	log.Info("took the rollout lease")
	stop := g.renew(ctx, st, lease, ttl, log)
	out, serr := g.Inner(ctx, rev, mode)
	stop()
	defer func() {
		if err := st.Release(context.WithoutCancel(ctx), lease); err != nil {
			log.Warn("rollout lease not released; it expires after its TTL", zap.Error(err))
		}
		g.mu.Lock()
		g.st.Lease = nil
		g.mu.Unlock()
	}()
	if errors.Is(serr, agent.ErrTransient) || ctx.Err() != nil {
		return out, serr // nothing happened that the fleet must know
	}
	r := Result{Host: g.Host, Commit: rev.Hash, Result: Succeeded, At: g.now().UTC()}
	if serr != nil {
		r.Result, r.Error = Failed, serr.Error()
	}
	rerr := st.Record(context.WithoutCancel(ctx), lease, r)
	if serr == nil {
		// After a failure the host runs its previous commit, which the
		// next drift check reports.
		g.beat(ctx, st, f, rev, out, nil)
	}
	switch {
	case rerr != nil && serr == nil:
		// Deployed, but the fleet does not know: the next attempt plans
		// nothing, takes the lease again and records.
		return out, agent.Transient(fmt.Errorf("deployed %s, but its result is not recorded in the coordination store (%w); the next attempt records it", state.ShortHash(rev.Hash), rerr))
	case rerr != nil:
		log.Error("the failure is not recorded in the coordination store: the hosts after this one are not halted by it", zap.Error(rerr))
	case serr != nil:
		log.Warn("recorded the failure: the rollout of this commit is halted")
	default:
		log.Info("recorded the result")
	}
	return out, serr
}

// RegionTurn says why this env may not start rev yet because of the region
// before it (f.After), "" when it may. Any doubt (the other env's file,
// its store) means waiting: a region never starts a commit it cannot see
// healthy in the region before it. It needs LoadEnv and OpenEnv only
// (fleet status asks it too).
func (g *Gate) RegionTurn(ctx context.Context, rev agent.Revision, f *state.Fleet) string {
	short := state.ShortHash(rev.Hash)
	path := state.EnvPath(f.After)
	if g.LoadEnv == nil || g.OpenEnv == nil {
		return "fleet.after: this agent cannot read other envs; deploying nothing new"
	}
	pe, err := g.LoadEnv(rev, f.After)
	switch {
	case err != nil:
		return fmt.Sprintf("fleet.after: %s at %s: %v; deploying nothing new", path, short, err)
	case pe.Fleet == nil:
		return fmt.Sprintf("fleet.after: %s at %s has no fleet section: want the env of the region before this one, with its fleet; deploying nothing new", path, short)
	case pe.Fleet.After == g.Env:
		return fmt.Sprintf("fleet.after: %s at %s waits for this env in turn (fleet.after: %s): a loop; deploying nothing new", path, short, g.Env)
	}
	st, err := g.OpenEnv(ctx, pe)
	if errors.Is(err, ErrAuth) {
		return fmt.Sprintf("region %s: %v; deploying nothing new, serving the applied commit", f.After, err)
	}
	if err != nil {
		return fmt.Sprintf("the coordination store of region %s is unreachable: deploying nothing new, serving the applied commit: %v", f.After, err)
	}
	if c, ok := st.(interface{ Close() error }); ok {
		defer c.Close()
	}
	snap, err := st.Snapshot(ctx, pe.Fleet.Hosts, pe.Fleet.Parallel)
	if err != nil {
		return fmt.Sprintf("the coordination store of region %s is unreachable: deploying nothing new, serving the applied commit: %v", f.After, err)
	}
	return RegionTurn(f.After, pe.Fleet, rev.Hash, f.AfterBake.D(), snap, g.now())
}

// wait records why the host waits and returns it as agent.Wait.
func (g *Gate) wait(err error, halted bool) error {
	g.mu.Lock()
	g.st.Waiting, g.st.Halted = err.Error(), halted
	g.mu.Unlock()
	return agent.Wait(err)
}

func (g *Gate) setStoreErr(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.st.StoreError = err.Error()
	} else {
		g.st.StoreError = ""
	}
}

func (g *Gate) setSnapshot(f *state.Fleet, snap Snapshot, err error) {
	g.setStoreErr(err)
	if err != nil {
		return
	}
	g.mu.Lock()
	g.st.Fleet, g.st.Hosts = &snap, append([]string(nil), f.Hosts...)
	g.mu.Unlock()
}

// openStore returns the store of e's fleet, opening it when the fleet
// names another, or the password is to be read with other aws settings.
func (g *Gate) openStore(ctx context.Context, e *state.Env) (Store, error) {
	f := e.Fleet
	key := f.Store + " " + f.Auth + " " + f.Username
	if e.AWS != nil {
		key += " " + e.AWS.Region + " " + e.AWS.Profile
	}
	g.mu.Lock()
	st, same := g.store, g.storeKey == key
	g.mu.Unlock()
	if st != nil && same {
		return st, nil
	}
	st, err := g.Open(ctx, e)
	if err != nil {
		g.setStoreErr(err)
		return nil, err
	}
	g.mu.Lock()
	if c, ok := g.store.(interface{ Close() error }); ok && g.store != nil {
		_ = c.Close()
	}
	g.store, g.storeKey = st, key
	g.mu.Unlock()
	return st, nil
}

// renew renews lease every third of ttl until the returned stop is called.
// A renewal that fails is logged: the deploy goes on (stopping it half-way
// would be worse), and the fencing token keeps a lease lost meanwhile from
// recording anything.
func (g *Gate) renew(ctx context.Context, st Store, l Lease, ttl time.Duration, log *zap.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := st.Renew(context.WithoutCancel(ctx), l, ttl); err != nil {
					log.Warn("rollout lease not renewed; the deploy goes on, its result is recorded only if the lease is still ours", zap.Error(err))
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// beat sends the host's heartbeat after a sync, and refreshes the view of
// the fleet. Errors are logged once per outage: the host keeps serving.
func (g *Gate) beat(ctx context.Context, st Store, f *state.Fleet, rev agent.Revision, out agent.Outcome, serr error) {
	h := Health{Host: g.Host, Commit: rev.Hash, Healthy: true, At: g.now().UTC()}
	var problems []string
	if serr != nil {
		problems = append(problems, serr.Error())
	}
	if len(out.CrashLooping) > 0 {
		problems = append(problems, "crash-looping: "+strings.Join(out.CrashLooping, ", "))
	}
	if len(out.UnhealthySites) > 0 {
		problems = append(problems, "unhealthy sites: "+strings.Join(out.UnhealthySites, ", "))
	}
	if len(problems) > 0 {
		h.Healthy, h.Problem = false, strings.Join(problems, "; ")
	}
	g.mu.Lock()
	switch {
	case !h.Healthy:
		g.healthy, g.healthyCommit = time.Time{}, ""
	case g.healthy.IsZero() || g.healthyCommit != h.Commit:
		g.healthy, g.healthyCommit = h.At, h.Commit
	}
	if h.Healthy {
		h.Since = g.healthy
	}
	g.mu.Unlock()
	ttl := g.HealthTTL
	if ttl <= 0 {
		ttl = 3 * time.Minute
	}
	bctx := context.WithoutCancel(ctx)
	err := st.Beat(bctx, h, ttl)
	if err == nil {
		var snap Snapshot
		snap, err = st.Snapshot(bctx, f.Hosts, f.Parallel)
		g.setSnapshot(f, snap, err)
		return
	}
	g.mu.Lock()
	was := g.st.StoreError
	g.mu.Unlock()
	if was == "" {
		g.log().Warn("coordination store unreachable: no new commit deploys until it answers; this host keeps serving and repairing drift", zap.Error(err))
	}
	g.setStoreErr(err)
}

func holders(s Snapshot) string {
	var hs []string
	for _, l := range s.Leases {
		hs = append(hs, fmt.Sprintf("%s (token %d)", l.Holder, l.Token))
	}
	if len(hs) == 0 {
		return "another host"
	}
	return strings.Join(hs, ", ")
}
