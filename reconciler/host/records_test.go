package host

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// fakeDNS is Route 53 as a map: record sets by key, site check ids by
// service, and the batches it was sent.
type fakeDNS struct {
	sets    map[state.RecordKey]state.RecordSet
	checks  map[string]string
	batches [][]reconciler.RecordChange
}

func (f *fakeDNS) RecordSets(_ context.Context, zone, name, typ string) ([]state.RecordSet, error) {
	var out []state.RecordSet
	for k, r := range f.sets {
		if k.Zone == zone && k.Name == name && k.Type == typ {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeDNS) SiteCheckIDs(_ context.Context, checks []state.SiteHealthCheck) (map[string]string, error) {
	ids := map[string]string{}
	for _, c := range checks {
		if id := f.checks[c.Service]; id != "" {
			ids[c.Service] = id
		}
	}
	return ids, nil
}

func (f *fakeDNS) ChangeRecords(_ context.Context, _ string, changes []reconciler.RecordChange) error {
	f.batches = append(f.batches, changes)
	for _, c := range changes {
		if c.Action == reconciler.RecordDelete {
			delete(f.sets, c.Record.RecordKey)
		} else {
			f.sets[c.Record.RecordKey] = c.Record
		}
	}
	return nil
}

// checkMaker is the site checks' API that makes each check in dns.
type checkMaker struct {
	dns  *fakeDNS
	fail bool
}

func (m checkMaker) EnsureHealthCheck(_ context.Context, c state.SiteHealthCheck) (string, string, error) {
	if m.fail {
		return "", "", errors.New("throttled")
	}
	m.dns.checks[c.Service] = "id-" + c.Service
	return "id-" + c.Service, "created", nil
}

type checkCloud struct {
	Cloud
	m checkMaker
}

func (c checkCloud) SiteChecks(context.Context) (SiteChecks, error) { return c.m, nil }

// TestDeployRecords: a first deploy of a region whose record's health
// check is a site check not made yet: the plan shows the record waiting
// for it; the deploy makes the check, then the record with the check's
// id, in one batch, and records the ownership; a plan with only the
// records touches neither the engine nor the backups. When the check
// cannot be made, the deploy fails saying the services stand, and no
// record is written.
func TestDeployRecords(t *testing.T) {
	t.Parallel()
	e := &state.Env{Environment: "t1", AWS: &state.AWS{Region: "us-east-1"}, Route53: &state.Route53Sites{HealthChecks: &state.SiteCheckSettings{},
		Records: []state.DNSRecord{{HostedZoneID: "Z1", Name: "api.example.com", Type: "A", Values: []string{"203.0.113.10"}, Routing: state.RoutingLatency,
			HealthCheck: &state.RecordHealthCheck{Service: "api"}}}},
		Services: map[string]state.Service{"api": {Image: "api:v1", ContainerPort: 8080, Listen: "80", ServerName: "api.example.com"}}}
	e.Default()
	d := &state.Desired{Env: "t1", Commit: "c0ffee", Records: e.RecordSets(), SiteChecks: e.SiteHealthChecks()}

	for _, fail := range []bool{false, true} {
		rt := &fakeRuntime{}
		h := newTestHost(t, rt, &fakeEdge{})
		dns := &fakeDNS{sets: map[state.RecordKey]state.RecordSet{}, checks: map[string]string{}}
		h.DNS = dns
		o, err := h.Observe(context.Background(), ScopeOf(d))
		if err != nil {
			t.Fatal(err)
		}
		o.Settings = map[string]string{} // no settings change in this plan
		p, err := reconciler.Diff(d, o, h.Key)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Changes) != 1 || p.Changes[0].Subject != reconciler.RecordsSubject || !strings.Contains(p.String(), "the check is created after the switch") {
			t.Fatalf("plan:\n%s", p)
		}
		res, err := h.Deploy(context.Background(), &Planned{Env: e, Desired: d, Observed: o, Plan: p}, DeployOptions{Cloud: checkCloud{m: checkMaker{dns: dns, fail: fail}}})
		for _, c := range rt.calls {
			if !strings.HasPrefix(c, "observe ") {
				t.Errorf("engine calls %v; want only observations for a records-only plan", rt.calls)
			}
		}
		if _, err := os.Stat(h.Dir.BackupDir("t1")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a backup was taken for a records-only plan: %v", err)
		}
		owned, _ := h.Dir.OwnedRecords("t1")
		if fail {
			if err == nil || !errors.Is(err, reconciler.ErrSiteCheckMissing) || !strings.Contains(err.Error(), "the services stand") || len(dns.batches) != 0 || owned != nil {
				t.Errorf("without the site check: err %v, batches %v, owned %v", err, dns.batches, owned)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(dns.batches) != 1 || len(dns.batches[0]) != 1 || dns.batches[0][0].Record.HealthCheckID != "id-api" || dns.batches[0][0].Action != reconciler.RecordUpsert {
			t.Fatalf("batches %+v, want one UPSERT with the site check's id", dns.batches)
		}
		if len(res.Records) != 1 || !strings.HasPrefix(res.Records[0], "+ api.example.com. A t1 (zone Z1)") {
			t.Errorf("Records = %q", res.Records)
		}
		if len(owned) != 1 || owned[0] != d.Records[0].RecordKey {
			t.Errorf("owned %v", owned)
		}
		// Applied again: in step, nothing sent.
		if lines, err := h.SyncRecords(context.Background(), d, nil); err != nil || lines != nil || len(dns.batches) != 1 {
			t.Errorf("again: %v %v, %d batches", lines, err, len(dns.batches))
		}
	}
}
