package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
)

func open(t *testing.T, r *testenv.Redis, env, password string) *Store {
	t.Helper()
	s, err := Open(env, Options{URL: r.URL(), Password: password, TLS: r.TLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestLeaseAndFencing: one holder per slot; a lease that expired is taken
// again with a higher token, and the old token's writes are refused.
func TestLeaseAndFencing(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		name := "plain"
		if withTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			r := testenv.StartRedis(t, withTLS)
			ctx := context.Background()
			s := open(t, r, "i18-fence", r.Password)
			a, err := s.Acquire(ctx, "h1/1", 1, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Acquire(ctx, "h2/2", 1, time.Second); !errors.Is(err, fleet.ErrHeld) {
				t.Fatalf("second acquire: %v, want ErrHeld", err)
			}
			if err := s.Renew(ctx, a, 300*time.Millisecond); err != nil {
				t.Fatalf("renew: %v", err)
			}
			// Let a expire (the holder died), polling with a deadline.
			var b fleet.Lease
			deadline := time.Now().Add(5 * time.Second)
			for {
				b, err = s.Acquire(ctx, "h2/2", 1, time.Second)
				if err == nil {
					break
				}
				if !errors.Is(err, fleet.ErrHeld) || time.Now().After(deadline) {
					t.Fatalf("acquire after the TTL: %v", err)
				}
				time.Sleep(20 * time.Millisecond) // polling the store
			}
			if b.Token <= a.Token {
				t.Fatalf("token %d after %d: want it to grow", b.Token, a.Token)
			}
			stale := fleet.Result{Host: "h1", Commit: "c1", Result: fleet.Failed, Error: "boom", At: time.Now()}
			if err := s.Record(ctx, a, stale); !errors.Is(err, fleet.ErrLost) {
				t.Fatalf("record with the old token: %v, want ErrLost", err)
			}
			if err := s.Renew(ctx, a, time.Second); !errors.Is(err, fleet.ErrLost) {
				t.Fatalf("renew with the old token: %v, want ErrLost", err)
			}
			if err := s.Release(ctx, a); err != nil { // not ours: a no-op
				t.Fatal(err)
			}
			snap, err := s.Snapshot(ctx, []string{"h1", "h2"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Halt != nil || snap.Hosts["h1"].Last.Commit != "" {
				t.Fatalf("the stale write landed: %+v", snap)
			}
			if len(snap.Leases) != 1 || snap.Leases[0].Token != b.Token || snap.Leases[0].Holder != "h2/2" {
				t.Fatalf("leases %+v, want h2's", snap.Leases)
			}
			if err := s.Release(ctx, b); err != nil {
				t.Fatal(err)
			}
			if snap, _ = s.Snapshot(ctx, nil, 1); len(snap.Leases) != 0 {
				t.Fatalf("leases after release: %+v", snap.Leases)
			}
		})
	}
}

// TestRecordHaltAndClear: a failure halts its commit; a success of a newer
// commit clears the halt; two slots let two holders in.
func TestRecordHaltAndClear(t *testing.T) {
	r := testenv.StartRedis(t, false)
	ctx := context.Background()
	s := open(t, r, "i18-halt", r.Password)
	other := open(t, r, "i18-other", r.Password)
	l1, err := s.Acquire(ctx, "h1/1", 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := s.Acquire(ctx, "h2/1", 2, time.Minute)
	if err != nil || l2.Slot != 1 {
		t.Fatalf("second slot: %+v, %v", l2, err)
	}
	if err := s.Record(ctx, l1, fleet.Result{Host: "h1", Commit: "c1", Result: fleet.Succeeded, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, l2, fleet.Result{Host: "h2", Commit: "c1", Result: fleet.Failed, Error: "health check failed", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx, []string{"h1", "h2"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Halt == nil || snap.Halt.Commit != "c1" || snap.Halt.Host != "h2" {
		t.Fatalf("halt %+v, want c1 by h2", snap.Halt)
	}
	if h2 := snap.Hosts["h2"]; h2.Applied.Commit != "" || h2.Last.Result != fleet.Failed {
		t.Fatalf("h2 %+v", h2)
	}
	if h1 := snap.Hosts["h1"]; h1.Applied.Commit != "c1" || h1.Applied.Token != l1.Token {
		t.Fatalf("h1 %+v", h1)
	}
	if o, _ := other.Snapshot(ctx, []string{"h1", "h2"}, 2); o.Halt != nil || len(o.Leases) != 0 || o.Hosts["h1"].Applied.Commit != "" {
		t.Fatalf("another env sees this env's keys: %+v", o)
	}
	if err := s.Record(ctx, l1, fleet.Result{Host: "h1", Commit: "c2", Result: fleet.Succeeded, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if snap, _ = s.Snapshot(ctx, []string{"h1"}, 2); snap.Halt != nil {
		t.Fatalf("halt after a newer commit succeeded: %+v", snap.Halt)
	}
	if err := s.Beat(ctx, fleet.Health{Host: "h1", Commit: "c2", Healthy: true, At: time.Now()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if snap, _ = s.Snapshot(ctx, []string{"h1"}, 2); snap.Hosts["h1"].Health == nil || !snap.Hosts["h1"].Health.Healthy {
		t.Fatalf("heartbeat not read: %+v", snap.Hosts["h1"])
	}
}

// TestAuthAndDown: a wrong password and a stopped server are errors that
// name the store, never the password.
func TestAuthAndDown(t *testing.T) {
	r := testenv.StartRedis(t, true)
	ctx := context.Background()
	bad := open(t, r, "i18-auth", "wrong-password")
	if err := bad.Ping(ctx); err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", err)
	}
	s := open(t, r, "i18-auth", r.Password)
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if _, err := s.Snapshot(ctx, []string{"h1"}, 1); err == nil {
		t.Fatal("snapshot of a stopped store: no error")
	}
	if _, err := s.Acquire(ctx, "h1/1", 1, time.Second); err == nil || errors.Is(err, fleet.ErrHeld) {
		t.Fatalf("acquire on a stopped store: %v", err)
	}
}

// TestErrorQuotingThePassword: a server that answers AUTH with an error
// quoting its arguments (here redis-server with AUTH and HELLO disabled:
// "unknown command 'auth', with args beginning with: 'PASSWORD'") gets the
// password, but no error of the store holds it: they reach logs and
// /status. errors.Is still sees through the scrubbing.
func TestErrorQuotingThePassword(t *testing.T) {
	r := testenv.StartRedisArgs(t, "--rename-command", "AUTH", "", "--rename-command", "HELLO", "")
	const password = "i18-quoted-Zq8vW3"
	s := open(t, r, "i18-quote", password)
	ctx := context.Background()
	errs := map[string]error{"ping": s.Ping(ctx)}
	_, errs["acquire"] = s.Acquire(ctx, "h1/1", 1, time.Second)
	_, errs["snapshot"] = s.Snapshot(ctx, []string{"h1"}, 1)
	errs["beat"] = s.Beat(ctx, fleet.Health{Host: "h1"}, time.Second)
	errs["record"] = s.Record(ctx, fleet.Lease{Token: 1, Holder: "h1/1"}, fleet.Result{Host: "h1", Commit: "c1", Result: fleet.Succeeded})
	errs["renew"] = s.Renew(ctx, fleet.Lease{Token: 1, Holder: "h1/1"}, time.Second)
	errs["release"] = s.Release(ctx, fleet.Lease{Token: 1, Holder: "h1/1"})
	for op, err := range errs {
		switch {
		case err == nil:
			t.Errorf("%s: no error from a server that refuses AUTH", op)
		case strings.Contains(err.Error(), password):
			t.Errorf("%s: the error holds the password: %v", op, err)
		case !strings.Contains(err.Error(), "[secret]"):
			t.Errorf("%s: %v; want the server's quote of the password as [secret]", op, err)
		}
	}
}

// TestUnfitAddress: an address state.UnfitStoreIP refuses gets no
// connection, so no AUTH with the password: it is refused before connect,
// as a name that resolves there would be. Only unspecified addresses are
// tried here (a regression would then reach this machine only);
// TestUnfitStoreIP in state covers the link-local ones.
func TestUnfitAddress(t *testing.T) {
	// fe80::1%lo is link-local on the loopback interface: a zone hides
	// the address from net.ParseIP, and a regression stays on this machine.
	for _, u := range []string{"redis://0.0.0.0:6379", "rediss://[::]:6379", "redis://[fe80::1%25lo]:6379"} {
		s, err := Open("i18-unfit", Options{URL: u, Password: "hunter2", Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Ping(context.Background())
		s.Close()
		if !errors.Is(err, ErrUnfitAddress) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: ping: %v; want ErrUnfitAddress", u, err)
		}
	}
}

// TestDefaultPort: a store URL without a port means Redis's 6379.
func TestDefaultPort(t *testing.T) {
	s, err := Open("i18-port", Options{URL: "rediss://cache.example.com/2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o := s.c.Options(); o.Addr != "cache.example.com:6379" || o.DB != 2 {
		t.Errorf("addr %s db %d; want cache.example.com:6379 db 2", o.Addr, o.DB)
	}
}

// TestACLRules: an agent whose store user has only ACLRules of its env
// does everything an agent does (lease, renew, record, halt, heartbeat,
// snapshot, release), over TLS too; the same user is refused another
// env's keys, keys outside the keyspace and admin commands. docs/agent.md
// shows the rules as ACLRules writes them.
func TestACLRules(t *testing.T) {
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", withTLS), func(t *testing.T) {
			r := testenv.StartRedis(t, withTLS)
			ctx := context.Background()
			admin := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), Password: r.Password, TLSConfig: r.TLS})
			defer admin.Close()
			const env, user, pw = "i18-acl", "fleet-i18-acl", "acl-pw-7c1d"
			args := []any{"ACL", "SETUSER", user, "on", ">" + pw}
			for _, rule := range strings.Fields(ACLRules(env)) {
				args = append(args, rule)
			}
			if err := admin.Do(ctx, args...).Err(); err != nil {
				t.Fatalf("ACL SETUSER: %v", err)
			}
			s, err := Open(env, Options{URL: r.URL() + "/3", Username: user, Password: pw, TLS: r.TLS})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			l, err := s.Acquire(ctx, "h1/1", 1, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Renew(ctx, l, time.Minute); err != nil {
				t.Fatal(err)
			}
			for _, res := range []fleet.Result{
				{Host: "h1", Commit: "c1", Result: fleet.Failed, Error: "health check failed", At: time.Now()},
				{Host: "h1", Commit: "c2", Result: fleet.Succeeded, At: time.Now()},
			} {
				if err := s.Record(ctx, l, res); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Beat(ctx, fleet.Health{Host: "h1", Commit: "c2", Healthy: true, At: time.Now()}, time.Minute); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Snapshot(ctx, []string{"h1", "h2"}, 1)
			if err != nil || snap.Hosts["h1"].Applied.Commit != "c2" || snap.Halt != nil || snap.Hosts["h1"].Health == nil {
				t.Fatalf("snapshot %+v, %v", snap, err)
			}
			if err := s.Release(ctx, l); err != nil {
				t.Fatal(err)
			}

			other, err := Open("i18-other", Options{URL: r.URL(), Username: user, Password: pw, TLS: r.TLS})
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			if _, err := other.Acquire(ctx, "h1/1", 1, time.Minute); err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Errorf("another env's lease with this env's user: %v, want NOPERM", err)
			}
			if _, err := other.Snapshot(ctx, []string{"h1"}, 1); err == nil || !strings.Contains(err.Error(), "NOPERM") {
				t.Errorf("another env's snapshot with this env's user: %v, want NOPERM", err)
			}
			limited := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), Username: user, Password: pw, TLSConfig: r.TLS})
			defer limited.Close()
			for _, cmd := range [][]any{{"SET", "elsewhere", "x"}, {"FLUSHALL"}, {"CONFIG", "SET", "requirepass", ""}, {"KEYS", "*"}} {
				if err := limited.Do(ctx, cmd...).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
					t.Errorf("%v with the env's user: %v, want NOPERM", cmd, err)
				}
			}
		})
	}
	doc, err := os.ReadFile("../../../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := ACLRules("prod-us-east-1"); !strings.Contains(string(doc), want) {
		t.Errorf("docs/agent.md does not show the ACL rules as ACLRules writes them:\n%s", want)
	}
}
