package state

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/internal/lazyre"
)

// fillDefaults fills the fleet's defaults; a nil fleet stays nil.
func (f *Fleet) fillDefaults() {
	if f == nil {
		return
	}
	if f.Parallel == 0 {
		f.Parallel = 1
	}
	// An explicit "0s" bake stays 0s (no bake); an explicit "0s" lease TTL
	// stays, and validation refuses it.
	if f.Canary != "" && f.CanaryBake == nil {
		f.CanaryBake = &Duration{DefaultCanaryBake}
	}
	if f.LeaseTTL == nil {
		f.LeaseTTL = &Duration{DefaultLeaseTTL}
	}
	if f.After != "" && f.AfterBake == nil {
		f.AfterBake = &Duration{DefaultAfterBake}
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
			case len(h) > 63 || !isDNSLabel(h):
				c.errf(p, "want a host name that is a DNS label (lowercase letters, digits, '-'), got %s", quote(h))
			case seen[h]:
				c.errf(p, "host %q is listed twice; want each host once", h)
			}
			seen[h] = true
		}
	}
	// A written 0 was filled with the default 1; it is still out of range.
	parallel := f.Parallel
	if v, ok := c.doc.rawInt("fleet.parallel"); ok && v == 0 {
		parallel = 0
	}
	if c.ok("fleet.parallel", "fleet.hosts") && (parallel < 1 || (len(f.Hosts) > 0 && parallel > len(f.Hosts))) {
		c.errf("fleet.parallel", "want how many hosts may deploy at once, 1 to %d (the number of hosts), got %d", max(len(f.Hosts), 1), parallel)
	}
	if c.ok("fleet.canary", "fleet.hosts") && f.Canary != "" && (len(f.Hosts) == 0 || f.Hosts[0] != f.Canary) {
		c.errf("fleet.canary", "want the first of fleet.hosts (the canary deploys first), got %s", quote(f.Canary))
	}
	switch {
	case !c.ok("fleet.canaryBake", "fleet.canary") || f.CanaryBake == nil:
	case f.Canary == "":
		c.errf("fleet.canaryBake", "set without fleet.canary, so no host bakes; name the canary (the first of fleet.hosts) in fleet.canary, or remove canaryBake")
	case f.CanaryBake.D() < 0:
		c.errf("fleet.canaryBake", "want a duration of 0s (no bake) or more such as \"10m\", got %s", f.CanaryBake.D())
	}
	if c.ok("fleet.after") && f.After != "" {
		switch err := checkName(f.After); {
		case err != nil:
			c.errf("fleet.after", "want the name of the env of the region before this one, such as \"prod-us-east-1\": %v", err)
		case f.After == c.envName:
			c.errf("fleet.after", "names this env; want the env of the region before this one, such as \"prod-us-east-1\"")
		default:
			c.checkAfterEnv(f.After)
		}
	}
	switch {
	case !c.ok("fleet.afterBake", "fleet.after") || f.AfterBake == nil:
	case f.After == "":
		c.errf("fleet.afterBake", "set without fleet.after, so there is no region to wait for; name the env of the region before this one in fleet.after, or remove afterBake")
	case f.AfterBake.D() < 0:
		c.errf("fleet.afterBake", "want a duration of 0s (no bake) or more such as \"10m\", got %s", f.AfterBake.D())
	}
	if c.ok("fleet.leaseTTL") && f.LeaseTTL.D() < minLeaseTTL {
		c.errf("fleet.leaseTTL", "want a duration of at least %s such as \"30s\", got %s", minLeaseTTL, f.LeaseTTL.D())
	}
}

// maxRegions bounds the chain of fleet.after links validate follows.
const maxRegions = 16

// checkAfterEnv checks that the env fleet.after names is one this env can
// wait for at the same commit: its file is there, it has a fleet, and the
// chain of regions it starts does not come back to this env (a loop,
// where every region would wait for ever). The other envs' own problems
// are their own validate's: only their fleet sections are read here,
// without checking them.
func (c *checker) checkAfterEnv(after string) {
	const want = "want the env of the region before this one, with a fleet section"
	chain := []string{c.envName}
	for cur := after; cur != ""; { // cur is a checked env name
		file := EnvPath(cur)
		var pe *Env
		data, err := readFile(c.fsys, file)
		if err == nil {
			pe, _, _ = decode(c.fsys, file, data) // its errors are its own validate's
		}
		first := len(chain) == 1
		switch {
		case !first && (pe == nil || pe.Fleet == nil):
			return // a problem of that env, reported by its own validate
		case err != nil:
			c.errf("fleet.after", "%s %v; %s", file, err, want)
			return
		case pe == nil:
			c.errf("fleet.after", "%s does not load (reconciler validate --env %s says why); %s", file, cur, want)
			return
		case pe.Fleet == nil:
			c.errf("fleet.after", "%s has no fleet section; %s", file, want)
			return
		}
		chain = append(chain, cur)
		next := pe.Fleet.After
		if slices.Contains(chain, next) {
			c.errf("fleet.after", "the regions wait for one another in a loop (%s → %s): none would ever deploy; %s", strings.Join(chain, " → "), next, want)
			return
		}
		if checkName(next) != nil {
			return // not an env's name: that env's own validate says so
		}
		if len(chain) > maxRegions {
			c.errf("fleet.after", "more than %d regions wait for one another (%s ...); want a shorter chain", maxRegions, strings.Join(chain[:4], " → "))
			return
		}
		cur = next
	}
}

// checkStoreURL checks fleet.store: redis:// or rediss://, a host that is
// not link-local, a port, no user name or password, an optional database
// number.
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
	if u.User != nil {
		// redis://WORD@HOST is read by some clients as a password: not shown.
		c.errf("fleet.store", "holds a user name (value not shown); put the ACL user in fleet.username and the password in a secret named by fleet.auth")
		return
	}
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss":
		c.errf("fleet.store", "%s, got scheme %s", want, quote(u.Scheme))
	case u.Hostname() == "":
		c.errf("fleet.store", "%s, got no host", want)
	case u.RawQuery != "" || u.Fragment != "":
		c.errf("fleet.store", "%s; options (?...) are not read", want)
	case strings.HasSuffix(u.Host, ":") || (u.Port() != "" && !validPort(u.Port())):
		c.errf("fleet.store", "%s; got port %s, want 1 to 65535 (or none: 6379)", want, quote(u.Port()))
	case UnfitStoreHost(u.Hostname()) != "":
		c.errf("fleet.store", "%s; got %s, %s", want, u.Hostname(), UnfitStoreHost(u.Hostname()))
	case u.Path != "" && u.Path != "/":
		if n, err := strconv.Atoi(u.Path[1:]); err != nil || n < 0 || n > 15 {
			c.errf("fleet.store", "%s; got database %s, want 0 to 15", want, quote(u.Path[1:]))
		}
	}
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// imdsV6 is the IPv6 address of EC2's instance metadata service.
var imdsV6 = net.ParseIP("fd00:ec2::254")

// UnfitStoreIP says why ip cannot be a coordination store's address, ""
// when it can (nil included: a name, resolved when the agent connects).
// A link-local address is where a cloud's metadata service answers
// (169.254.169.254, also as the NAT64 address 64:ff9b::a9fe:a9fe), never
// a Redis; an unspecified or multicast address is no one's. Loopback and
// private addresses are the operator's choice.
func UnfitStoreIP(ip net.IP) string {
	if v4 := nat64(ip); v4 != nil {
		ip = v4 // a NAT64 gateway reaches the IPv4 address it embeds
	}
	switch {
	case ip == nil:
		return ""
	case ip.IsLinkLocalUnicast() || ip.Equal(imdsV6):
		return "a link-local address (where the cloud's metadata service answers); want the store's own address or name"
	case ip.IsUnspecified() || ip.IsMulticast():
		return "an unspecified or multicast address; want the store's own address or name"
	}
	return ""
}

// nat64Prefix is the well-known NAT64 prefix 64:ff9b::/96 (RFC 6052).
var nat64Prefix = net.IP{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0}

// nat64 is the IPv4 address that ip, an address of the well-known NAT64
// prefix, embeds; nil for any other.
func nat64(ip net.IP) net.IP {
	if len(ip) != net.IPv6len || !ip[:12].Equal(nat64Prefix) {
		return nil
	}
	return net.IPv4(ip[12], ip[13], ip[14], ip[15])
}

// UnfitStoreHost is UnfitStoreIP of host, an address or a name as a URL
// or a dialer holds it: an IPv6 address with a zone ("fe80::1%eth0",
// "fd00:ec2::254%eth0"), which net.ParseIP does not read, is judged by its
// address, so that a zone does not pass the metadata address off as a name.
func UnfitStoreHost(host string) string {
	if i := strings.IndexByte(host, '%'); i >= 0 && strings.Contains(host, ":") {
		host = host[:i]
	}
	return UnfitStoreIP(net.ParseIP(host))
}

// Keyspace is the prefix of every key the fleet of env keeps in its store:
// one env never reads or writes another's keys. The braces are a Redis
// Cluster hash tag: every key of an env sits in one slot, so that one
// script may touch several.
func Keyspace(env string) string { return fmt.Sprintf("reconciler:fleet:{%s}:", env) }

// fleetUser is the shape of a store ACL user name.
var fleetUser = lazyre.New(`^[A-Za-z0-9_-]{1,64}$`)
