package reconciler

import (
	"errors"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

// TestDiffRecords: the batch holds exactly the changes (UPSERT with the
// site check's id resolved, DELETE with the values Route 53 holds), never
// another region's record set; the strict form refuses a missing site
// check; an unowned simple record set of a declared name is refused; a
// Desired and Observed in step plan nothing.
func TestDiffRecords(t *testing.T) {
	t.Parallel()
	d := &state.Desired{Env: "prod", Records: testRecords()[1:]}
	stale := testRecords()[0]
	stale.HealthCheckID, stale.Values = "old-check", []string{"lb-0.us-east-1.elb.amazonaws.com."}
	stale.File, stale.Field = "", ""
	o := &state.Observed{DNS: &state.ObservedDNS{SiteChecks: map[string]string{"mcp-server": "site-check-1"},
		Records: []state.RecordSet{stale, otherRegion()}, Owned: []state.RecordKey{testRecords()[0].RecordKey}}}

	tests := []struct {
		name    string
		d       *state.Desired
		o       *state.Observed
		want    []string // "ACTION name set values healthcheck" per change
		wantErr string
	}{
		{name: "create and delete owned", d: d, o: o, want: []string{
			"DELETE api.example.com. prod lb-0.us-east-1.elb.amazonaws.com. old-check",
			"UPSERT mcp.example.com. prod 203.0.113.10,203.0.113.11 site-check-1",
		}},
		{name: "missing site check", d: d, o: &state.Observed{DNS: &state.ObservedDNS{}},
			wantErr: "envs/prod.yaml: route53.records[0].healthCheck: the site check of mcp-server: site check not in Route 53"},
		{name: "simple record set of someone else", d: d, o: &state.Observed{DNS: &state.ObservedDNS{SiteChecks: map[string]string{"mcp-server": "x"},
			Records: []state.RecordSet{{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A"}, TTL: 300, Values: []string{"192.0.2.1"}}}}},
			wantErr: "envs/prod.yaml: route53.records[0]: zone Z1 has a simple record set mcp.example.com. A that reconciler did not write"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DiffRecords(tc.d, tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range c.Steps {
				if s.Action != ActRecords {
					continue
				}
				for _, ch := range s.Records.Changes {
					got = append(got, strings.Join([]string{ch.Action, ch.Record.Name, ch.Record.SetIdentifier, strings.Join(ch.Record.Values, ","), ch.Record.HealthCheckID}, " "))
					if ch.Record.HealthCheckService != "" || ch.Record.File != "" {
						t.Errorf("change %+v carries the env file's fields", ch)
					}
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if last := c.Steps[len(c.Steps)-1]; last.Action != ActOwnRecords || len(last.Owned) != 1 || last.Owned[0] != testRecords()[1].RecordKey {
				t.Errorf("last step %+v, want the ownership of mcp.example.com only", last)
			}
		})
	}
	if !errors.Is(func() error { _, err := DiffRecords(d, &state.Observed{}); return err }(), ErrSiteCheckMissing) {
		t.Error("a missing site check is not ErrSiteCheckMissing")
	}
}

// TestSplitRecords: the host's part of a plan keeps every other change in
// order; the record change comes apart.
func TestSplitRecords(t *testing.T) {
	t.Parallel()
	p := &Plan{Env: "prod", Commit: "c1", Changes: []Change{{Subject: "api"}, {Subject: RecordsSubject}, {Subject: "settings"}}}
	rest, rc := p.SplitRecords()
	if rc == nil || rc.Subject != RecordsSubject {
		t.Fatalf("records change = %+v", rc)
	}
	if len(rest.Changes) != 2 || rest.Changes[0].Subject != "api" || rest.Changes[1].Subject != "settings" || rest.Env != "prod" {
		t.Errorf("rest = %+v", rest)
	}
	if len(p.Changes) != 3 {
		t.Error("SplitRecords changed the plan")
	}
	if _, rc := rest.SplitRecords(); rc != nil {
		t.Error("a plan without records split one off")
	}
}
