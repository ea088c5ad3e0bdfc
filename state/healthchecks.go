package state

import (
	"net"
	"sort"
	"strconv"
	"strings"
)

// Defaults of Route53Sites.
const (
	DefaultRequestInterval  = 30
	DefaultFailureThreshold = 3
)

// SiteHealthCheck is the Route 53 health check one public site should have.
type SiteHealthCheck struct {
	Service          string
	FQDN             string
	Type             string // "HTTP" or "HTTPS"
	Port             int
	Path             string
	RequestInterval  int
	FailureThreshold int
}

// SiteHealthChecks returns the health checks e's public sites should have,
// sorted by service; none unless route53.healthChecks is set. Call it on
// a defaulted env (Load does that), so that health paths are set.
func (e *Env) SiteHealthChecks() []SiteHealthCheck {
	if e.Route53 == nil || e.Route53.HealthChecks == nil {
		return nil
	}
	interval, threshold := e.Route53.HealthChecks.RequestInterval, e.Route53.HealthChecks.FailureThreshold
	if interval == 0 {
		interval = DefaultRequestInterval
	}
	if threshold == 0 {
		threshold = DefaultFailureThreshold
	}
	var out []SiteHealthCheck
	for name, s := range e.Services {
		names := strings.Fields(s.ServerName)
		if s.Route53 != nil || len(names) == 0 || strings.HasPrefix(names[0], "_") || strings.Contains(names[0], "*") {
			continue
		}
		host, port := siteAddr(s.Listen)
		if port == 0 || isLoopback(host) {
			continue
		}
		typ := "HTTP"
		if s.TLS != nil || strings.Contains(" "+s.Listen+" ", " ssl ") {
			typ = "HTTPS"
		}
		path := s.Health.Path
		if path == "" {
			path = DefaultHealthPath
		}
		out = append(out, SiteHealthCheck{Service: name, FQDN: names[0], Type: typ, Port: port, Path: path,
			RequestInterval: interval, FailureThreshold: threshold})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// siteAddr splits the address of an nginx listen directive ("443 ssl",
// "127.0.0.1:8080", "[::1]:80") into host ("" for all) and port.
func siteAddr(listen string) (string, int) {
	fields := strings.Fields(listen)
	if len(fields) == 0 {
		return "", 0
	}
	addr, host := fields[0], ""
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host, addr = strings.Trim(addr[:i], "[]"), addr[i+1:]
	}
	p, err := strconv.Atoi(addr)
	if err != nil {
		return "", 0
	}
	return host, p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *checker) checkRoute53Sites(r *Route53Sites) {
	if r == nil || r.HealthChecks == nil {
		return
	}
	h, p := r.HealthChecks, "route53.healthChecks"
	if c.ok(p+".requestInterval") && h.RequestInterval != 0 && h.RequestInterval != 10 && h.RequestInterval != 30 {
		c.errf(p+".requestInterval", "want 10 or 30 (seconds; Route 53 offers no other), got %d", h.RequestInterval)
	}
	if c.ok(p+".failureThreshold") && (h.FailureThreshold < 0 || h.FailureThreshold > 10) {
		c.errf(p+".failureThreshold", "want 1 to 10, got %d", h.FailureThreshold)
	}
}
