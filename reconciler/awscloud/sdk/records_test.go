package sdk_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
	"github.com/developer-mesh/reconciler/state"
)

// TestRoute53RecordSets: through the real SDK and the fake's REST-XML,
// a batch creates a latency record set; RecordSets reads every region's
// share of the name and type, in normal form, and nothing of other names
// or types, across pages; a DELETE with stale values is refused whole
// (InvalidChangeBatch) and changes nothing; SiteCheckIDs finds a site's
// check by FQDN and type.
func TestRoute53RecordSets(t *testing.T) {
	t.Parallel()
	fake := testenv.FakeAWS(t)
	fake.AddZone("Z1")
	fake.PutRecordSet("Z1", testenv.RecordSet{Name: "mcp.example.com", Type: "A", SetIdentifier: "prod-eu-west-1", TTL: 60,
		Values: []string{"198.51.100.20"}, Region: "eu-west-1"})
	fake.PutRecordSet("Z1", testenv.RecordSet{Name: "mcp.example.com", Type: "AAAA", SetIdentifier: "prod-us-east-1", TTL: 60, Values: []string{"2001:db8::1"}, Region: "us-east-1"})
	fake.PutRecordSet("Z1", testenv.RecordSet{Name: "zz.mcp.example.com", Type: "A", TTL: 60, Values: []string{"192.0.2.9"}})
	for i := range 120 { // a second page of the same name and type
		fake.PutRecordSet("Z1", testenv.RecordSet{Name: "many.example.com", Type: "A", SetIdentifier: strings.Repeat("s", 1+i/26) + string(rune('a'+i%26)), TTL: 60, Values: []string{"192.0.2.1"}, Region: "us-east-1"})
	}
	r := sdk.NewRoute53(config(fake))
	ctx := context.Background()

	mine := state.RecordSet{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A", SetIdentifier: "prod-us-east-1"}, TTL: 60,
		Values: []string{"203.0.113.10", "203.0.113.11"}, Region: "us-east-1", HealthCheckID: "hc-1"}
	if err := r.ChangeRecords(ctx, "Z1", []reconciler.RecordChange{{Action: reconciler.RecordUpsert, Record: mine}}); err != nil {
		t.Fatal(err)
	}
	got, err := r.RecordSets(ctx, "Z1", "mcp.example.com.", "A")
	if err != nil {
		t.Fatal(err)
	}
	other := state.RecordSet{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A", SetIdentifier: "prod-eu-west-1"}, TTL: 60,
		Values: []string{"198.51.100.20"}, Region: "eu-west-1"}
	if want := []state.RecordSet{other, mine}; !reflect.DeepEqual(got, want) {
		t.Fatalf("RecordSets:\n got %+v\nwant %+v", got, want)
	}
	many, err := r.RecordSets(ctx, "Z1", "many.example.com.", "A")
	if err != nil || len(many) != 120 {
		t.Fatalf("many: %d record sets, %v; want 120 over two pages", len(many), err)
	}

	stale := mine
	stale.Values = []string{"192.0.2.200"}
	err = r.ChangeRecords(ctx, "Z1", []reconciler.RecordChange{
		{Action: reconciler.RecordUpsert, Record: state.RecordSet{RecordKey: state.RecordKey{Zone: "Z1", Name: "new.example.com.", Type: "A", SetIdentifier: "x"}, TTL: 60, Values: []string{"192.0.2.2"}, Region: "us-east-1"}},
		{Action: reconciler.RecordDelete, Record: stale},
	})
	var icb *types.InvalidChangeBatch
	if !errors.As(err, &icb) || !strings.Contains(err.Error(), "do not match the current values") {
		t.Fatalf("delete with stale values: %v, want InvalidChangeBatch", err)
	}
	if n := len(fake.RecordSets("Z1")); n != 124 {
		t.Fatalf("%d record sets after a refused batch, want 124 (nothing changed)", n)
	}
	if err := r.ChangeRecords(ctx, "Z1", []reconciler.RecordChange{{Action: reconciler.RecordDelete, Record: mine}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.RecordSets(ctx, "Z1", "mcp.example.com.", "A"); !reflect.DeepEqual(got, []state.RecordSet{other}) {
		t.Fatalf("after delete: %+v, want eu-west-1's only", got)
	}
	if _, err := r.RecordSets(ctx, "Z404", "mcp.example.com.", "A"); err == nil {
		t.Fatal("a missing zone listed")
	}

	site := state.SiteHealthCheck{Service: "api", FQDN: "mcp.example.com", Type: "HTTPS", Port: 443, Path: "/health", RequestInterval: 30, FailureThreshold: 3}
	ids, err := r.SiteCheckIDs(ctx, []state.SiteHealthCheck{site})
	if err != nil || len(ids) != 0 {
		t.Fatalf("before the check: %v %v", ids, err)
	}
	id, _, err := r.EnsureHealthCheck(ctx, site)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := r.SiteCheckIDs(ctx, []state.SiteHealthCheck{site}); err != nil || ids["api"] != id {
		t.Fatalf("SiteCheckIDs = %v %v, want api: %s", ids, err, id)
	}
}
