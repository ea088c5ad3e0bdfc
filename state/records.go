package state

import (
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"

	"github.com/developer-mesh/reconciler/internal/lazyre"
)

// Routing policies of a DNSRecord.
const (
	RoutingLatency  = "latency"
	RoutingFailover = "failover"
)

// maxRecordTTL bounds a DNSRecord's TTL: a day.
const maxRecordTTL = 86400

// maxRecords and maxRecordValues bound what a file from git may ask of
// Route 53: the record sets of one env (one change batch each way), and
// the answers of one record set (Route 53 takes at most 400).
const (
	maxRecords      = 100
	maxRecordValues = 400
)

// RecordKey identifies a record set in Route 53: two record sets with the
// same key are the same record set.
type RecordKey struct {
	Zone          string `json:"zone"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	SetIdentifier string `json:"setIdentifier"`
}

// String is the key as plans print it: "mcp.example.com. A prod-us-east-1 (zone Z1)".
func (k RecordKey) String() string {
	return fmt.Sprintf("%s %s %s (zone %s)", k.Name, k.Type, k.SetIdentifier, k.Zone)
}

// Less orders keys by zone, name, type and set identifier.
func (k RecordKey) Less(o RecordKey) bool {
	if k.Zone != o.Zone {
		return k.Zone < o.Zone
	}
	if k.Name != o.Name {
		return k.Name < o.Name
	}
	if k.Type != o.Type {
		return k.Type < o.Type
	}
	return k.SetIdentifier < o.SetIdentifier
}

// RecordSet is a Route 53 record set in normal form: the name in lower
// case with a trailing dot, the values sorted (a CNAME's in lower case
// with a trailing dot). A desired record set has HealthCheckService or
// HealthCheckID (or neither); an observed one HealthCheckID only.
type RecordSet struct {
	RecordKey
	TTL      int64    `json:"ttl"`
	Values   []string `json:"values"`
	Region   string   `json:"region,omitempty"`
	Failover string   `json:"failover,omitempty"`
	// HealthCheckID is the id of the record's health check; "" for none
	// (or, on a desired record, for the site check of HealthCheckService).
	HealthCheckID string `json:"healthCheckId,omitempty"`
	// HealthCheckService, on a desired record set, is the service whose
	// site check (SiteHealthCheck) is the record's health check.
	HealthCheckService string `json:"healthCheckService,omitempty"`
	// File and Field are where a desired record set is declared, for
	// errors ("envs/prod.yaml", "route53.records[0]").
	File  string `json:"-"`
	Field string `json:"-"`
}

// ObservedDNS is what Route 53 holds of an environment's records.
type ObservedDNS struct {
	// Records are the record sets, of any set identifier, whose zone,
	// name and type the env declares or owns, sorted by key.
	Records []RecordSet
	// SiteChecks maps a service to the id of its site's Route 53 health
	// check (found by FQDN and type); absent when the check does not exist.
	SiteChecks map[string]string
	// Owned are the record sets reconciler wrote for the env on this host
	// (the state dir's record), sorted.
	Owned []RecordKey
}

// NormalName is name as Route 53 returns it: lower case, with a
// trailing dot.
func NormalName(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// NormalZone is a hosted zone id without its "/hostedzone/" prefix.
func NormalZone(id string) string { return strings.TrimPrefix(id, "/hostedzone/") }

// NormalValues are values in the order and case Route 53's answers are
// compared in: sorted; a CNAME's in lower case with a trailing dot.
func NormalValues(typ string, values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		v = strings.TrimSpace(v)
		switch typ {
		case "CNAME":
			v = NormalName(v)
		case "AAAA":
			if ip := net.ParseIP(v); ip != nil {
				v = ip.String()
			}
		}
		out[i] = v
	}
	slices.Sort(out)
	return out
}

// RecordSets returns the record sets e declares (route53.records) in
// normal form with their defaults: TTL 60, the region aws.region, the set
// identifier the env's name. Call it on a loaded (validated) env.
func (e *Env) RecordSets() []RecordSet {
	if e.Route53 == nil {
		return nil
	}
	var out []RecordSet
	for i, r := range e.Route53.Records {
		rs := RecordSet{
			RecordKey: RecordKey{Zone: NormalZone(r.HostedZoneID), Name: NormalName(r.Name), Type: r.Type, SetIdentifier: r.SetIdentifier},
			TTL:       int64(r.TTL), Values: NormalValues(r.Type, r.Values), Failover: r.Failover,
			File: EnvPath(e.Environment), Field: fmt.Sprintf("route53.records[%d]", i),
		}
		if rs.TTL == 0 {
			rs.TTL = DefaultRecordTTL
		}
		if rs.SetIdentifier == "" {
			rs.SetIdentifier = e.Environment
		}
		if r.Routing == RoutingLatency {
			rs.Region = r.Region
			if rs.Region == "" && e.AWS != nil {
				rs.Region = e.AWS.Region
			}
		}
		if h := r.HealthCheck; h != nil {
			rs.HealthCheckID, rs.HealthCheckService = h.ID, h.Service
		}
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b RecordSet) int {
		switch {
		case a.RecordKey.Less(b.RecordKey):
			return -1
		case b.RecordKey.Less(a.RecordKey):
			return 1
		}
		return 0
	})
	return out
}

// hostedZoneID is a Route 53 hosted zone id.
var hostedZoneID = lazyre.New(`^[A-Z0-9]{1,32}$`)

// dnsLabel is one label of a DNS name.
var dnsLabel = lazyre.New(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validDNSName reports whether name (lower case, trailing dot optional)
// is a DNS name of at least two labels.
func validDNSName(name string) bool {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// checkRecords checks route53.records: every field of every record, the
// health checks they name, and that no two records are the same record
// set.
func (c *checker) checkRecords(e *Env) {
	if e.Route53 == nil {
		return
	}
	sites := map[string]bool{}
	for _, s := range e.SiteHealthChecks() {
		sites[s.Service] = true
	}
	if n := len(e.Route53.Records); n > maxRecords {
		c.errf("route53.records", "want at most %d record sets in one env, got %d (split the names over envs or zones)", maxRecords, n)
		return
	}
	seen := map[RecordKey]string{}
	var others map[RecordKey]string // read on first use
	for i, r := range e.Route53.Records {
		p := fmt.Sprintf("route53.records[%d]", i)
		if !c.ok(p) {
			continue
		}
		zoneOK := false
		switch z := NormalZone(r.HostedZoneID); {
		case r.HostedZoneID == "":
			c.errf(p+".hostedZoneId", "required: want the id of the hosted zone that holds the name, such as \"Z0123456789ABCDEFGHIJ\"")
		case !hostedZoneID.MatchString(z):
			c.errf(p+".hostedZoneId", "want a Route 53 hosted zone id (capital letters and digits) such as \"Z0123456789ABCDEFGHIJ\", got %s", quote(r.HostedZoneID))
		default:
			zoneOK = true
		}
		nameOK := false
		switch {
		case r.Name == "":
			c.errf(p+".name", "required: want the public DNS name such as \"mcp.example.com\"")
		case strings.Contains(r.Name, "*"):
			c.errf(p+".name", "want a DNS name without a wildcard such as \"mcp.example.com\", got %s", quote(r.Name))
		case !validDNSName(r.Name):
			c.errf(p+".name", "want a DNS name of two labels or more (letters, digits, '-', dots) such as \"mcp.example.com\", got %s", quote(r.Name))
		default:
			nameOK = true
		}
		typeOK := r.Type == "A" || r.Type == "AAAA" || r.Type == "CNAME"
		if !typeOK {
			c.errf(p+".type", "want A, AAAA or CNAME, got %s", quote(r.Type))
		}
		// A written 0 is out of range too (absent means the default).
		if v, written := c.doc.rawInt(p + ".ttl"); r.TTL < 0 || r.TTL > maxRecordTTL || (written && v == 0) {
			c.errf(p+".ttl", "want 1 to %d seconds (default %d), got %d", maxRecordTTL, DefaultRecordTTL, r.TTL)
		}
		c.checkRecordValues(p, r, typeOK)
		setID := r.SetIdentifier
		switch {
		case setID == "":
			setID = e.Environment
		case len(setID) > 128 || strings.TrimSpace(setID) != setID || strings.ContainsFunc(setID, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			c.errf(p+".setIdentifier", "want 1 to 128 printable characters without leading or trailing space (default the env's name), got %s", quote(setID))
		}
		if file, _ := c.doc.where(p + ".setIdentifier"); r.SetIdentifier != "" && file != c.file {
			// Every env that extends that file would write the same
			// record set, each overwriting the others' values.
			c.errf(p+".setIdentifier", "written in %s, which every env that extends it shares, so each of them would write the same record set; write it in %s, or leave it out (default: the env's name)", file, c.file)
		}
		switch r.Routing {
		case RoutingLatency:
			region := r.Region
			if region == "" && e.AWS != nil {
				region = e.AWS.Region
			}
			switch {
			case region == "":
				c.errf(p+".region", "required with routing: latency: want this region's AWS region such as \"us-east-1\" (here or in aws.region)")
			case !awsRegion.MatchString(region):
				c.errf(p+".region", "want an AWS region such as \"us-east-1\", got %s", quote(region))
			}
			if r.Failover != "" {
				c.errf(p+".failover", "only with routing: failover; a latency record has a region instead, got %s", quote(r.Failover))
			}
		case RoutingFailover:
			switch {
			case r.Failover == "":
				c.errf(p+".failover", "required with routing: failover: want PRIMARY or SECONDARY")
			case r.Failover != "PRIMARY" && r.Failover != "SECONDARY":
				c.errf(p+".failover", "want PRIMARY or SECONDARY, got %s", quote(r.Failover))
			case r.Failover == "PRIMARY" && r.HealthCheck == nil:
				c.errf(p+".healthCheck", "required for a failover PRIMARY: without a health check Route 53 never fails over; want {service: NAME} (its site check) or {id: ID}")
			}
			if r.Region != "" {
				c.errf(p+".region", "only with routing: latency, got %s", quote(r.Region))
			}
		case "":
			c.errf(p+".routing", "required: want latency or failover (each region's record set of the name is one of several)")
		default:
			c.errf(p+".routing", "want latency or failover, got %s", quote(r.Routing))
		}
		if h := r.HealthCheck; h != nil {
			hp := p + ".healthCheck"
			switch {
			case h.Service == "" && h.ID == "":
				c.errf(hp, "want {service: NAME} (the site check reconciler keeps for that service) or {id: ID}, got neither")
			case h.Service != "" && h.ID != "":
				c.errf(hp, "want service or id, not both")
			case h.ID != "" && !healthCheckID.MatchString(h.ID):
				c.errf(hp+".id", "want a Route 53 health check id such as \"abcdef12-3456-7890-abcd-ef1234567890\", got %s", quote(h.ID))
			case h.Service != "" && !hasService(e, h.Service):
				c.errf(hp+".service", "want a service of this env (%s), got %s", strings.Join(SortedKeys(e.Services), ", "), quote(h.Service))
			case h.Service != "" && !sites[h.Service]:
				c.errf(hp+".service", "service %s has no site check: want route53.healthChecks set and the service public (listen not on loopback, a serverName), or an id", h.Service)
			}
		}
		if zoneOK && nameOK && typeOK {
			k := RecordKey{Zone: NormalZone(r.HostedZoneID), Name: NormalName(r.Name), Type: r.Type, SetIdentifier: setID}
			if prev, ok := seen[k]; ok {
				c.errf(p, "the same record set as %s (zone, name, type and setIdentifier): want one entry per record set", prev)
			}
			seen[k] = p
			if others == nil {
				var tooMany bool
				if others, tooMany = c.otherEnvsRecords(e.Environment); tooMany {
					c.errf("route53.records", "envs/ holds more than %d other .yaml files; each record set is checked against every other env's, and reading more is refused: keep at most %d other env files in envs/", maxOtherEnvs, maxOtherEnvs)
				}
			}
			if other, ok := others[k]; ok {
				c.errf(p, "record set %s is env %s's too: %s declares it, and one env never writes another's record sets (each deploy would overwrite the other's, and a removal delete it); want this env's own setIdentifier (default: the env's name) or the record set in one env only",
					k, other, EnvPath(other))
			}
		}
	}
}

// maxOtherEnvs bounds the env files that otherEnvsRecords reads (each at
// most maxFileSize): a commit cannot make validate parse without end.
const maxOtherEnvs = 64

// otherEnvsRecords is the record sets that the other envs of the
// repository (every envs/NAME.yaml whose environment is NAME, base files
// merged) declare, each with its env's name. Two envs that declare one
// record set (zone, name, type and setIdentifier) would each UPSERT it
// over the other's values, and one's removal would delete the other's. An
// env file that does not parse is left to its own validate. Empty without
// the commit's tree (c.fsys); tooMany when envs/ holds more than
// maxOtherEnvs other env files (the first are read).
func (c *checker) otherEnvsRecords(env string) (out map[RecordKey]string, tooMany bool) {
	out = map[RecordKey]string{}
	if c.fsys == nil {
		return out, false
	}
	entries, err := fs.ReadDir(c.fsys, "envs")
	if err != nil {
		return out, false
	}
	read := 0
	for _, de := range entries {
		name, ok := strings.CutSuffix(de.Name(), ".yaml")
		if !ok || name == env || !de.Type().IsRegular() || checkName(name) != nil {
			continue
		}
		if read++; read > maxOtherEnvs {
			return out, true
		}
		data, err := readFile(c.fsys, EnvPath(name))
		if err != nil {
			continue
		}
		if pe, _, _ := decode(c.fsys, EnvPath(name), data); pe != nil && pe.Environment == name {
			for _, rs := range pe.RecordSets() {
				out[rs.RecordKey] = name
			}
		}
	}
	return out, false
}

func hasService(e *Env, name string) bool {
	_, ok := e.Services[name]
	return ok
}

// checkRecordValues checks a record's values against its type.
func (c *checker) checkRecordValues(p string, r DNSRecord, typeOK bool) {
	if len(r.Values) == 0 {
		c.errf(p+".values", "required: want this region's answers, such as [\"203.0.113.10\"] (A) or [\"lb-1.us-east-1.elb.amazonaws.com\"] (CNAME)")
		return
	}
	if !typeOK {
		return
	}
	if len(r.Values) > maxRecordValues {
		c.errf(p+".values", "want at most %d values in one record set (Route 53's limit), got %d", maxRecordValues, len(r.Values))
		return
	}
	if r.Type == "CNAME" && len(r.Values) > 1 {
		c.errf(p+".values", "a CNAME has one value, got %d", len(r.Values))
		return
	}
	seen := map[string]bool{}
	for j, v := range r.Values {
		vp := fmt.Sprintf("%s.values[%d]", p, j)
		ip := net.ParseIP(v)
		switch r.Type {
		case "A":
			if ip == nil || ip.To4() == nil || strings.Contains(v, ":") {
				c.errf(vp, "want an IPv4 address such as \"203.0.113.10\", got %s", quote(v))
				continue
			}
		case "AAAA":
			if ip == nil || !strings.Contains(v, ":") {
				c.errf(vp, "want an IPv6 address such as \"2001:db8::10\", got %s", quote(v))
				continue
			}
		case "CNAME":
			if !validDNSName(v) {
				c.errf(vp, "want a DNS name such as \"lb-1.us-east-1.elb.amazonaws.com\", got %s", quote(v))
				continue
			}
		}
		n := NormalValues(r.Type, []string{v})[0]
		if seen[n] {
			c.errf(vp, "%s appears twice", quote(v))
		}
		seen[n] = true
	}
}
