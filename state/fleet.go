package state

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/developer-mesh/reconciler/internal/lazyre"
)

// Fleet defaults.
const (
	DefaultCanaryBake = 5 * time.Minute
	DefaultLeaseTTL   = 30 * time.Second
)

// fillDefaults fills the fleet's defaults; a nil fleet stays nil.
func (f *Fleet) fillDefaults() {
	if f == nil {
		return
	}
	if f.Parallel == 0 {
		f.Parallel = 1
	}
	if f.Canary != "" && f.CanaryBake.Duration == 0 {
		f.CanaryBake.Duration = DefaultCanaryBake
	}
	if f.LeaseTTL.Duration == 0 {
		f.LeaseTTL.Duration = DefaultLeaseTTL
	}
	if f.After != "" && f.AfterBake.Duration == 0 {
		f.AfterBake.Duration = DefaultCanaryBake
	}
}

// Index returns the place of host in the rollout order, or -1 when the
// fleet has no such host.
func (f *Fleet) Index(host string) int {
	return slices.Index(f.Hosts, host)
}

// AuthRef is the parsed secret reference of the store's password; ok is
// false when the fleet has none. f must come from Load.
func (f *Fleet) AuthRef() (ref SecretRef, ok bool) {
	if f == nil || f.Auth == "" {
		return SecretRef{}, false
	}
	ref, err := ParseSecretRef(f.Auth)
	return ref, err == nil
}

// minLeaseTTL keeps renewals (every third of the TTL) well above a
// store's round trip.
const minLeaseTTL = 3 * time.Second

func (c *checker) checkFleet(f *Fleet) {
	if f == nil {
		return
	}
	if c.ok("fleet.store") {
		c.checkStoreURL(f.Store)
	}
	if c.ok("fleet.auth") && f.Auth != "" {
		if _, err := ParseSecretRef(f.Auth); err != nil {
			c.errf("fleet.auth", "%s", err)
		}
	}
	if c.ok("fleet.username") && f.Username != "" && !fleetUser.MatchString(f.Username) {
		c.errf("fleet.username", "want an ACL user name of letters, digits, '_' and '-', got %s", quote(f.Username))
	}
	if c.ok("fleet.hosts") {
		if len(f.Hosts) == 0 {
			c.errf("fleet.hosts", "required: want the hosts' names in rollout order, such as [web-1, web-2]")
		}
		seen := map[string]bool{}
		for i, h := range f.Hosts {
			p := "fleet.hosts[" + strconv.Itoa(i) + "]"
			switch {
			case len(h) > 63 || !dnsLabelRE.MatchString(h):
				c.errf(p, "want a host name that is a DNS label (lowercase letters, digits, '-'), got %s", quote(h))
			case seen[h]:
				c.errf(p, "host %q is listed twice; want each host once", h)
			}
			seen[h] = true
		}
	}
	if c.ok("fleet.parallel", "fleet.hosts") && (f.Parallel < 1 || (len(f.Hosts) > 0 && f.Parallel > len(f.Hosts))) {
		c.errf("fleet.parallel", "want how many hosts may deploy at once, 1 to %d (the number of hosts), got %d", max(len(f.Hosts), 1), f.Parallel)
	}
	if c.ok("fleet.canary", "fleet.hosts") && f.Canary != "" && (len(f.Hosts) == 0 || f.Hosts[0] != f.Canary) {
		c.errf("fleet.canary", "want the first of fleet.hosts (the canary deploys first), got %s", quote(f.Canary))
	}
	if c.ok("fleet.canaryBake") && f.CanaryBake.Duration < 0 {
		c.errf("fleet.canaryBake", "want a duration of 0 or more such as \"10m\", got %s", f.CanaryBake.Duration)
	}
	if c.ok("fleet.after") && f.After != "" {
		switch err := checkName(f.After); {
		case err != nil:
			c.errf("fleet.after", "want the name of the env of the region before this one, such as \"prod-us-east-1\": %v", err)
		case f.After == c.envName:
			c.errf("fleet.after", "names this env; want the env of the region before this one, such as \"prod-us-east-1\"")
		}
	}
	if c.ok("fleet.afterBake") && f.AfterBake.Duration < 0 {
		c.errf("fleet.afterBake", "want a duration of 0 or more such as \"10m\", got %s", f.AfterBake.Duration)
	}
	if c.ok("fleet.leaseTTL") && f.LeaseTTL.Duration < minLeaseTTL {
		c.errf("fleet.leaseTTL", "want a duration of at least %s such as \"30s\", got %s", minLeaseTTL, f.LeaseTTL.Duration)
	}
}

// checkStoreURL checks fleet.store: redis:// or rediss://, a host, no
// password, an optional database number.
func (c *checker) checkStoreURL(s string) {
	const want = "want redis://HOST:PORT or rediss://HOST:PORT (TLS), optionally with /DB"
	if s == "" {
		c.errf("fleet.store", "required; %s", want)
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		// The URL may hold a password: not shown.
		c.errf("fleet.store", "not a URL (value not shown); %s", want)
		return
	}
	if _, has := u.User.Password(); has {
		c.errf("fleet.store", "holds a password (value not shown); put the password in a secret and name it in fleet.auth")
		return
	}
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss":
		c.errf("fleet.store", "%s, got scheme %s", want, quote(u.Scheme))
	case u.Hostname() == "":
		c.errf("fleet.store", "%s, got no host", want)
	case u.RawQuery != "" || u.Fragment != "":
		c.errf("fleet.store", "%s; options (?...) are not read", want)
	case u.Path != "" && u.Path != "/":
		if n, err := strconv.Atoi(u.Path[1:]); err != nil || n < 0 || n > 15 {
			c.errf("fleet.store", "%s; got database %s, want 0 to 15", want, quote(u.Path[1:]))
		}
	}
}

// Keyspace is the prefix of every key the fleet of env keeps in its store:
// one env never reads or writes another's keys. The braces are a Redis
// Cluster hash tag: every key of an env sits in one slot, so that one
// script may touch several.
func Keyspace(env string) string { return fmt.Sprintf("reconciler:fleet:{%s}:", env) }

// fleetUser is the shape of a store ACL user name.
var fleetUser = lazyre.New(`^[A-Za-z0-9_-]{1,64}$`)
