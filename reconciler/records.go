package reconciler

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/developer-mesh/reconciler/state"
)

// RecordsSubject is the subject of the change that keeps the env's Route
// 53 record sets in step (no service can have the name: it has a space).
const RecordsSubject = "route53 records"

// ErrSiteCheckMissing is matched by the error of DiffRecords when a
// record's health check is the site check of a service and that check
// does not exist in Route 53.
var ErrSiteCheckMissing = errors.New("site check not in Route 53")

// DiffRecords returns the change that brings the env's Route 53 record
// sets (d.Records) in step with what Route 53 holds (o.DNS), nil when they
// are: an UPSERT for each record set that is missing or differs (TTL,
// values, region, failover, health check), a DELETE, with the values
// Route 53 holds, for each record set the env owned and no longer
// declares, one ActRecords step per hosted zone, then the new ownership
// (ActOwnRecords) when it changes. Record sets of other set identifiers
// (other regions) and of other names are never in it. It is pure. It
// fails when a record's site check does not exist (ErrSiteCheckMissing)
// and when a simple record set reconciler does not own holds a declared
// name and type (Route 53 refuses to mix it with latency or failover
// record sets; reconciler does not delete what it did not write).
func DiffRecords(d *state.Desired, o *state.Observed) (*Change, error) {
	return diffRecords(d, o, true)
}

// diffRecords is DiffRecords; with strict false, a record whose site
// check does not exist yet is planned without its id, and the reason says
// so (the plan diff shows before the deploy that creates the check).
func diffRecords(d *state.Desired, o *state.Observed, strict bool) (*Change, error) {
	dns := o.DNS
	if dns == nil {
		dns = &state.ObservedDNS{}
	}
	if len(d.Records) == 0 && len(dns.Owned) == 0 {
		return nil, nil
	}
	observed := map[state.RecordKey]state.RecordSet{}
	for _, r := range dns.Records {
		observed[r.RecordKey] = r
	}
	batches := map[string][]RecordChange{}
	var reasons []string
	var creates, updates, deletes int
	declared := map[state.RecordKey]bool{}
	for _, want := range d.Records {
		declared[want.RecordKey] = true
		simple := want.RecordKey
		simple.SetIdentifier = ""
		if _, ok := observed[simple]; ok && !slices.Contains(dns.Owned, simple) {
			return nil, fmt.Errorf("%s: %s: zone %s has a simple record set %s %s that reconciler did not write, and Route 53 refuses latency or failover record sets beside it; delete it in Route 53 or declare another name",
				want.File, want.Field, want.Zone, want.Name, want.Type)
		}
		pending := ""
		if svc := want.HealthCheckService; svc != "" {
			want.HealthCheckID = dns.SiteChecks[svc]
			if want.HealthCheckID == "" {
				if strict {
					return nil, fmt.Errorf("%s: %s.healthCheck: the site check of %s: %w (route53.healthChecks creates it after a deploy)", want.File, want.Field, svc, ErrSiteCheckMissing)
				}
				pending = " (the check is created after the switch)"
			}
		}
		got, ok := observed[want.RecordKey]
		switch {
		case ok && pending != "":
			// The record cannot be in step before its check exists.
			updates++
			diffs := recordDiffs(got, want)
			if got.HealthCheckID == "" {
				diffs = append(diffs, "health check (none) → the site check of "+want.HealthCheckService)
			}
			reasons = append(reasons, fmt.Sprintf("~ %s: %s%s", want.RecordKey, strings.Join(diffs, ", "), pending))
		case !ok:
			creates++
			reasons = append(reasons, fmt.Sprintf("+ %s: %s%s", want.RecordKey, describeRecord(want), pending))
		default:
			diffs := recordDiffs(got, want)
			if len(diffs) == 0 {
				continue
			}
			updates++
			reasons = append(reasons, fmt.Sprintf("~ %s: %s%s", want.RecordKey, strings.Join(diffs, ", "), pending))
		}
		want.HealthCheckService, want.File, want.Field = "", "", ""
		batches[want.Zone] = append(batches[want.Zone], RecordChange{Action: RecordUpsert, Record: want})
	}
	for _, k := range dns.Owned {
		if declared[k] {
			continue
		}
		got, ok := observed[k]
		if !ok {
			reasons = append(reasons, fmt.Sprintf("= %s: no longer declared and already gone from Route 53: forget it", k))
			continue
		}
		deletes++
		reasons = append(reasons, fmt.Sprintf("- %s: no longer declared, and reconciler wrote it: delete %s", k, describeRecord(got)))
		batches[k.Zone] = append(batches[k.Zone], RecordChange{Action: RecordDelete, Record: got})
	}
	owned := make([]state.RecordKey, 0, len(d.Records))
	for _, r := range d.Records {
		owned = append(owned, r.RecordKey)
	}
	slices.SortFunc(owned, compareKeys)
	if len(batches) == 0 && slices.Equal(owned, dns.Owned) {
		return nil, nil
	}
	c := &Change{Kind: Update, Subject: RecordsSubject, Reasons: reasons}
	var parts []string
	for _, p := range []struct {
		n    int
		verb string
	}{{creates, "create"}, {updates, "change"}, {deletes, "delete"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d record set(s)", p.verb, p.n))
		}
	}
	if len(parts) == 0 {
		c.Summary = "record which record sets the env owns"
		if len(reasons) == 0 {
			c.Reasons = []string{fmt.Sprintf("= %d record set(s) already as declared: the env owns them from now on", len(owned))}
		}
	} else {
		c.Summary = strings.Join(parts, ", ")
	}
	for _, zone := range state.SortedKeys(batches) {
		changes := batches[zone]
		slices.SortFunc(changes, func(a, b RecordChange) int { return compareKeys(a.Record.RecordKey, b.Record.RecordKey) })
		c.Steps = append(c.Steps, Step{Action: ActRecords, Target: "zone " + zone, Records: &RecordBatch{Zone: zone, Changes: changes}})
	}
	if !slices.Equal(owned, dns.Owned) {
		c.Steps = append(c.Steps, Step{Action: ActOwnRecords, Target: d.Env, Owned: owned})
	}
	return c, nil
}

// SplitRecords returns p without its Route 53 record change, and that
// change (nil when p has none). The host layer applies the records after
// the rest of the plan and the site checks, from a fresh read of Route 53
// (DiffRecords).
func (p *Plan) SplitRecords() (*Plan, *Change) {
	rest := *p
	rest.Changes = nil
	var records *Change
	for i, c := range p.Changes {
		if c.Subject == RecordsSubject {
			records = &p.Changes[i]
			continue
		}
		rest.Changes = append(rest.Changes, c)
	}
	return &rest, records
}

func compareKeys(a, b state.RecordKey) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// describeRecord is a record set's answer as plans show it:
// "latency us-east-1, ttl 60, 203.0.113.10, health check ID".
func describeRecord(r state.RecordSet) string {
	var parts []string
	switch {
	case r.Region != "":
		parts = append(parts, "latency "+r.Region)
	case r.Failover != "":
		parts = append(parts, "failover "+r.Failover)
	}
	parts = append(parts, fmt.Sprintf("ttl %d", r.TTL), strings.Join(r.Values, " "))
	switch {
	case r.HealthCheckID != "":
		parts = append(parts, "health check "+r.HealthCheckID)
	case r.HealthCheckService != "":
		parts = append(parts, "health check: the site check of "+r.HealthCheckService)
	default:
		parts = append(parts, "no health check")
	}
	return strings.Join(parts, ", ")
}

// recordDiffs lists what differs from got to want; nil when nothing does.
func recordDiffs(got, want state.RecordSet) []string {
	var out []string
	if got.TTL != want.TTL {
		out = append(out, fmt.Sprintf("ttl %d → %d", got.TTL, want.TTL))
	}
	if !slices.Equal(got.Values, want.Values) {
		out = append(out, fmt.Sprintf("values %s → %s", strings.Join(got.Values, " "), strings.Join(want.Values, " ")))
	}
	if got.Region != want.Region {
		out = append(out, fmt.Sprintf("region %s → %s", orNone(got.Region), orNone(want.Region)))
	}
	if got.Failover != want.Failover {
		out = append(out, fmt.Sprintf("failover %s → %s", orNone(got.Failover), orNone(want.Failover)))
	}
	if got.HealthCheckID != want.HealthCheckID {
		to := orNone(want.HealthCheckID)
		if want.HealthCheckID == "" && want.HealthCheckService != "" {
			to = "the site check of " + want.HealthCheckService
		}
		out = append(out, fmt.Sprintf("health check %s → %s", orNone(got.HealthCheckID), to))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
