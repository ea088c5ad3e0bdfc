package memhost

import (
	"context"
	"fmt"
	"slices"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

var _ reconciler.Records = (*Host)(nil)

// seedDNS makes the host's Route 53 hold what dns says (record sets, site
// checks) and the env own what it owned.
func (h *Host) seedDNS(env string, dns *state.ObservedDNS) {
	if dns == nil {
		return
	}
	if h.records == nil {
		h.records, h.siteChecks = map[state.RecordKey]state.RecordSet{}, map[string]string{}
	}
	for _, r := range dns.Records {
		h.records[r.RecordKey] = cloneRecord(r)
	}
	for svc, id := range dns.SiteChecks {
		h.siteChecks[svc] = id
	}
	if len(dns.Owned) > 0 {
		if h.ownedRecords == nil {
			h.ownedRecords = map[string][]state.RecordKey{}
		}
		h.ownedRecords[env] = slices.Clone(dns.Owned)
	}
}

// observeDNS is what the host's Route 53 holds of d's record sets, as
// host.ObserveDNS reads it: nil when d declares and the env owns none.
// Called with h.mu held.
func (h *Host) observeDNS(d *state.Desired) *state.ObservedDNS {
	owned := slices.Clone(h.ownedRecords[d.Env])
	if len(d.Records) == 0 && len(owned) == 0 {
		return nil
	}
	names := map[state.RecordKey]bool{}
	for _, r := range d.Records {
		names[state.RecordKey{Zone: r.Zone, Name: r.Name, Type: r.Type}] = true
	}
	for _, k := range owned {
		names[state.RecordKey{Zone: k.Zone, Name: k.Name, Type: k.Type}] = true
	}
	o := &state.ObservedDNS{Owned: owned, SiteChecks: map[string]string{}}
	for k, r := range h.records {
		if names[state.RecordKey{Zone: k.Zone, Name: k.Name, Type: k.Type}] {
			o.Records = append(o.Records, cloneRecord(r))
		}
	}
	slices.SortFunc(o.Records, func(a, b state.RecordSet) int {
		switch {
		case a.Less(b.RecordKey):
			return -1
		case b.Less(a.RecordKey):
			return 1
		}
		return 0
	})
	for svc, id := range h.siteChecks {
		o.SiteChecks[svc] = id
	}
	return o
}

// ChangeRecords implements reconciler.Records as Route 53 does: all the
// changes or none; a DELETE must name the record set's current values.
func (h *Host) ChangeRecords(ctx context.Context, zone string, changes []reconciler.RecordChange) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "change-records", zone, fmt.Sprint(len(changes))); err != nil {
		return err
	}
	next := map[state.RecordKey]state.RecordSet{}
	for k, r := range h.records {
		next[k] = r
	}
	for _, c := range changes {
		r := cloneRecord(c.Record)
		r.Zone = zone
		switch c.Action {
		case reconciler.RecordUpsert:
			next[r.RecordKey] = r
		case reconciler.RecordDelete:
			got, ok := next[r.RecordKey]
			if !ok || got.TTL != r.TTL || !slices.Equal(got.Values, r.Values) || got.HealthCheckID != r.HealthCheckID || got.Region != r.Region || got.Failover != r.Failover {
				return fmt.Errorf("delete %s: not found with these values", r.RecordKey)
			}
			delete(next, r.RecordKey)
		default:
			return fmt.Errorf("change action %q", c.Action)
		}
	}
	h.records = next
	return nil
}

func cloneRecord(r state.RecordSet) state.RecordSet {
	r.Values = slices.Clone(r.Values)
	r.File, r.Field = "", ""
	return r
}
