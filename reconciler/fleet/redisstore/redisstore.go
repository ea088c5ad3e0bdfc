// Package redisstore is fleet.Store on Redis (ElastiCache, or Debian's
// redis-server in tests) through go-redis: leases are keys set with NX and
// a TTL, the fencing token is an INCR counter, and every fenced write is one
// Lua script that compares the lease's value first.
package redisstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/state"
)

func init() {
	// go-redis logs dial failures on its own through a global logger; the
	// errors it returns say the same, and the callers report them.
	redis.SetLogger(quiet{})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// ACLRules are the Redis ACL rules (ACL SETUSER NAME on >PASSWORD RULES)
// of a user that may do all an agent of env does and no more: the keys of
// env's keyspace only (state.Keyspace), no channels, and only the commands
// the store sends, its Lua scripts' included. A password that leaks from
// one env's hosts then reaches no other env's keys and cannot flush or
// reconfigure the server. The env of a region after this one
// (fleet.after) reads this store with this env's user too.
func ACLRules(env string) string {
	return "resetkeys ~" + state.Keyspace(env) + "* resetchannels -@all " + aclCommands
}

// aclCommands are the commands the store sends: the connection's (go-redis
// says HELLO and selects the DB of the URL; its CLIENT SETINFO may be
// refused, which it ignores), the
// reads, and the writes of the scripts, which Redis checks too.
const aclCommands = "+ping +hello +auth +select +get +set +hget +hgetall +pttl +evalsha +eval +del +exists +hset +incr +pexpire"

// Options connect to a store.
type Options struct {
	// URL is fleet.store: redis://HOST:PORT[/DB] or rediss://... (TLS).
	URL string
	// Username and Password are sent with AUTH when Password is set.
	Username, Password string
	// TLS, when set, replaces the TLS configuration of a rediss:// URL
	// (tests trust their own CA with it).
	TLS *tls.Config
	// Timeout bounds each command; default 2s.
	Timeout time.Duration
}

// Store is the coordination store of one environment.
type Store struct {
	c      *redis.Client
	prefix string
	// scrub removes the password from every error: a store (or a proxy
	// before it) may quote a command's arguments, AUTH's included, in
	// its error replies, and these errors reach logs and /status.
	scrub *state.Scrubber
}

var _ fleet.Store = (*Store)(nil)

// Open makes a client for env's keys. It does not connect: the first
// command does.
func Open(env string, o Options) (*Store, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, errors.New("fleet store: want redis://HOST:PORT or rediss://HOST:PORT")
	}
	db := 0
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		if db, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("fleet store: database %q is not a number", p)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	opts := &redis.Options{Addr: addr, DB: db, Username: o.Username, Password: o.Password,
		DialTimeout: o.Timeout, ReadTimeout: o.Timeout, WriteTimeout: o.Timeout,
		MaxRetries: 1, PoolSize: 4, DisableIdentity: true}
	if u.Scheme == "rediss" {
		opts.TLSConfig = o.TLS
		if opts.TLSConfig == nil {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		}
	}
	opts.Dialer = dialer(o.Timeout, opts.TLSConfig)
	return &Store{c: redis.NewClient(opts), prefix: state.Keyspace(env), scrub: state.NewScrubber(o.Password)}, nil
}

// dialer is go-redis's own dialer (TCP, then TLS when tlsc is set) that
// refuses, before connecting, an address state.UnfitStoreHost refuses (a
// zone included): a store's name that resolves to the metadata service's
// address gets no connection, so no AUTH with the password.
func dialer(timeout time.Duration, tlsc *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 5 * time.Minute,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if why := state.UnfitStoreHost(host); why != "" {
				return fmt.Errorf("%w: %s is %s", ErrUnfitAddress, host, why)
			}
			return nil
		}}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if tlsc == nil {
			return d.DialContext(ctx, network, addr)
		}
		return (&tls.Dialer{NetDialer: d, Config: tlsc}).DialContext(ctx, network, addr)
	}
}

// ErrUnfitAddress is returned when the store's name resolves to an address
// no store has (see state.UnfitStoreIP).
var ErrUnfitAddress = errors.New("refused the coordination store's address")

// Close closes the client.
func (s *Store) Close() error { return s.c.Close() }

// Ping checks that the store answers (and takes the password).
func (s *Store) Ping(ctx context.Context) error { return s.scrub.Error(s.c.Ping(ctx).Err()) }

// scrubErr scrubs the password from *err.
func (s *Store) scrubErr(err *error) { *err = s.scrub.Error(*err) }

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

func (s *Store) leaseKey(slot int) string { return s.key("lease", strconv.Itoa(slot)) }

// leaseValue is what a lease key holds: the token, then the holder.
func leaseValue(l fleet.Lease) string { return strconv.FormatInt(l.Token, 10) + " " + l.Holder }

// acquire: KEYS[1] the token counter, KEYS[2..] the slots; ARGV holder, ttl ms.
var acquire = redis.NewScript(`
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    local t = redis.call('INCR', KEYS[1])
    redis.call('SET', KEYS[i], t .. ' ' .. ARGV[1], 'PX', ARGV[2])
    return {i - 2, t}
  end
end
return false`)

// Acquire implements fleet.Store.
func (s *Store) Acquire(ctx context.Context, holder string, slots int, ttl time.Duration) (_ fleet.Lease, err error) {
	defer s.scrubErr(&err)
	keys := []string{s.key("token")}
	for i := range slots {
		keys = append(keys, s.leaseKey(i))
	}
	v, err := acquire.Run(ctx, s.c, keys, holder, ttl.Milliseconds()).Slice()
	if errors.Is(err, redis.Nil) {
		return fleet.Lease{}, fleet.ErrHeld
	}
	if err != nil {
		return fleet.Lease{}, fmt.Errorf("acquire the rollout lease: %w", err)
	}
	if len(v) != 2 {
		return fleet.Lease{}, fmt.Errorf("acquire the rollout lease: unexpected reply %v", v)
	}
	slot, _ := v[0].(int64)
	token, _ := v[1].(int64)
	return fleet.Lease{Slot: int(slot), Token: token, Holder: holder}, nil
}

// renew: KEYS[1] the slot; ARGV the lease's value, ttl ms.
var renew = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

// Renew implements fleet.Store.
func (s *Store) Renew(ctx context.Context, l fleet.Lease, ttl time.Duration) (err error) {
	defer s.scrubErr(&err)
	n, err := renew.Run(ctx, s.c, []string{s.leaseKey(l.Slot)}, leaseValue(l), ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("renew the rollout lease: %w", err)
	}
	if n != 1 {
		return fleet.ErrLost
	}
	return nil
}

// release: KEYS[1] the slot; ARGV the lease's value.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Release implements fleet.Store.
func (s *Store) Release(ctx context.Context, l fleet.Lease) (err error) {
	defer s.scrubErr(&err)
	if err := release.Run(ctx, s.c, []string{s.leaseKey(l.Slot)}, leaseValue(l)).Err(); err != nil {
		return fmt.Errorf("release the rollout lease: %w", err)
	}
	return nil
}

// record: KEYS[1] the slot, KEYS[2] the host's hash, KEYS[3] the halt hash;
// ARGV the lease's value, the result (JSON), "1" when it succeeded, its
// commit, the halt (JSON) or "".
var record = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], 'last', ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'applied', ARGV[2])
  local h = redis.call('HGET', KEYS[3], 'commit')
  if h and h ~= ARGV[4] then
    redis.call('DEL', KEYS[3])
  end
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], 'commit', ARGV[4], 'json', ARGV[5])
end
return 1`)

// Record implements fleet.Store.
func (s *Store) Record(ctx context.Context, l fleet.Lease, r fleet.Result) (err error) {
	defer s.scrubErr(&err)
	r.Token = l.Token
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ok, halt := "", ""
	if r.Result == fleet.Succeeded {
		ok = "1"
	} else {
		h, err := json.Marshal(fleet.Halt{Commit: r.Commit, Host: r.Host, Error: r.Error, At: r.At})
		if err != nil {
			return err
		}
		halt = string(h)
	}
	n, err := record.Run(ctx, s.c, []string{s.leaseKey(l.Slot), s.key("host", r.Host), s.key("halt")},
		leaseValue(l), string(b), ok, r.Commit, halt).Int()
	if err != nil {
		return fmt.Errorf("record the result of %s: %w", r.Host, err)
	}
	if n != 1 {
		return fmt.Errorf("record the result of %s with token %d: %w", r.Host, l.Token, fleet.ErrLost)
	}
	return nil
}

// Beat implements fleet.Store.
func (s *Store) Beat(ctx context.Context, h fleet.Health, ttl time.Duration) (err error) {
	defer s.scrubErr(&err)
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.key("health", h.Host), b, ttl).Err(); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Snapshot implements fleet.Store: one pipeline of reads.
func (s *Store) Snapshot(ctx context.Context, hosts []string, slots int) (_ fleet.Snapshot, err error) {
	defer s.scrubErr(&err)
	pipe := s.c.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(hosts))
	beats := make([]*redis.StringCmd, len(hosts))
	for i, h := range hosts {
		hashes[i] = pipe.HGetAll(ctx, s.key("host", h))
		beats[i] = pipe.Get(ctx, s.key("health", h))
	}
	leases := make([]*redis.StringCmd, slots)
	ttls := make([]*redis.DurationCmd, slots)
	for i := range slots {
		leases[i] = pipe.Get(ctx, s.leaseKey(i))
		ttls[i] = pipe.PTTL(ctx, s.leaseKey(i))
	}
	halt := pipe.HGet(ctx, s.key("halt"), "json")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fleet.Snapshot{}, fmt.Errorf("read the fleet: %w", err)
	}
	snap := fleet.Snapshot{Hosts: map[string]fleet.HostState{}, Leases: []fleet.Lease{}}
	now := time.Now()
	for i, h := range hosts {
		var hs fleet.HostState
		m := hashes[i].Val()
		_ = json.Unmarshal([]byte(m["applied"]), &hs.Applied)
		_ = json.Unmarshal([]byte(m["last"]), &hs.Last)
		if b, err := beats[i].Bytes(); err == nil {
			var hb fleet.Health
			if json.Unmarshal(b, &hb) == nil {
				hs.Health = &hb
			}
		}
		snap.Hosts[h] = hs
	}
	for i := range slots {
		v, err := leases[i].Result()
		if err != nil {
			continue
		}
		tok, holder, _ := strings.Cut(v, " ")
		t, _ := strconv.ParseInt(tok, 10, 64)
		l := fleet.Lease{Slot: i, Token: t, Holder: holder}
		if d := ttls[i].Val(); d > 0 {
			l.Expires = now.Add(d)
		}
		snap.Leases = append(snap.Leases, l)
	}
	if b, err := halt.Bytes(); err == nil {
		var h fleet.Halt
		if json.Unmarshal(b, &h) == nil {
			snap.Halt = &h
		}
	}
	return snap, nil
}
