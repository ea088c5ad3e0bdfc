package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// recordsYAML is a route53 block with one latency record set of name in
// zone Z1 (this region: us-east-1) with the given values, and a failover
// PRIMARY of api.<name>, both with health checks by id.
func recordsYAML(name string, values ...string) string {
	return fmt.Sprintf(`route53:
  records:
    - hostedZoneId: Z1
      name: %s
      type: A
      ttl: 60
      values: [%s]
      routing: latency
      region: us-east-1
      healthCheck: {id: hc-us}
    - hostedZoneId: Z1
      name: api.%s
      type: CNAME
      values: [lb-1.us-east-1.elb.example.net]
      routing: failover
      failover: PRIMARY
      healthCheck: {id: hc-us}
`, name, strings.Join(values, ", "), name)
}

// TestRoute53Records: an env's record sets through diff, apply and the
// agent against the loopback Route 53 (real SDK, REST-XML): diff shows
// the records to create; apply creates both in one batch after the
// switch; an apply in step makes no Change call; a changed value is one
// UPSERT; a failed deploy leaves the record set as it was; an edit in the
// console is repaired by the agent's heal; a record the env no longer
// declares is deleted because reconciler wrote it; another region's record
// set of the same name and an unrelated name are never touched; a bad
// record is refused with file:line and no AWS call. Not parallel: it sets
// the AWS variables of the process.
func TestRoute53Records(t *testing.T) {
	fake := testenv.FakeAWS(t)
	fake.Setenv(t)
	fake.AddZone("Z1")
	w := newWorld(t)
	name := "mcp-" + w.env + ".example.com"
	eu := testenv.RecordSet{Name: name + ".", Type: "A", SetIdentifier: "prod-eu-west-1", TTL: 60, Values: []string{"198.51.100.20"}, Region: "eu-west-1", HealthCheckID: "hc-eu"}
	other := testenv.RecordSet{Name: "www.example.com.", Type: "A", TTL: 300, Values: []string{"192.0.2.80"}}
	fake.PutRecordSet("Z1", eu)
	fake.PutRecordSet("Z1", other)
	untouched := func(when string) {
		t.Helper()
		sets := fake.RecordSets("Z1")
		for _, want := range []testenv.RecordSet{eu, other} {
			if !slices.ContainsFunc(sets, func(r testenv.RecordSet) bool { return fmt.Sprint(r) == fmt.Sprint(want) }) {
				t.Fatalf("%s: %s %s %s was changed or deleted: %+v", when, want.Name, want.Type, want.SetIdentifier, sets)
			}
		}
	}
	mine := func() (testenv.RecordSet, bool) {
		for _, r := range fake.RecordSets("Z1") {
			if r.Name == name+"." && r.Type == "A" && r.SetIdentifier == w.env {
				return r, true
			}
		}
		return testenv.RecordSet{}, false
	}
	changes := func() int { return fake.Calls("ChangeResourceRecordSets") }

	// Create: diff shows both record sets and changes nothing.
	w.commit(spec{version: "v1", config: "a: 1\n", top: recordsYAML(name, "203.0.113.10")}, "v1 with records")
	r := w.mustRun(exitChanges, "diff")
	for _, want := range []string{"~ route53 records: create 2 record set(s)", "+ " + name + ". A " + w.env + " (zone Z1): latency us-east-1, ttl 60, 203.0.113.10, health check hc-us",
		"+ api." + name + ". CNAME " + w.env + " (zone Z1): failover PRIMARY"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	if changes() != 0 {
		t.Fatalf("diff made %d Change calls", changes())
	}
	r = w.mustRun(exitOK, "apply")
	if !strings.Contains(r.stdout, "route53 records changed and read back in step") || changes() != 1 {
		t.Fatalf("apply: %d Change calls, want 1 batch; output:\n%s", changes(), r.stdout)
	}
	w.wantServing("v1")
	if got, ok := mine(); !ok || !slices.Equal(got.Values, []string{"203.0.113.10"}) || got.Region != "us-east-1" || got.HealthCheckID != "hc-us" || got.TTL != 60 {
		t.Fatalf("record set after apply: %+v %v", got, ok)
	}
	untouched("after the create")
	owned, err := os.ReadFile(filepath.Join(w.stateDir, w.env+".records"))
	if err != nil || !strings.Contains(string(owned), `"setIdentifier": "`+w.env+`"`) {
		t.Fatalf("ownership record: %v\n%s", err, owned)
	}

	// No-op: in step, no Change call.
	r = w.mustRun(exitOK, "apply")
	w.mustRun(exitOK, "diff")
	if changes() != 1 || strings.Contains(r.stdout, "route53 records changed") {
		t.Fatalf("apply in step: %d Change calls, want still 1; output:\n%s", changes(), r.stdout)
	}

	// Change: one UPSERT of this region's record set.
	w.commit(spec{version: "v1", config: "a: 1\n", top: recordsYAML(name, "203.0.113.20", "203.0.113.21")}, "new addresses")
	r = w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "~ "+name+". A "+w.env+" (zone Z1): values 203.0.113.10 → 203.0.113.20 203.0.113.21") {
		t.Fatalf("diff of the change:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	if got, _ := mine(); !slices.Equal(got.Values, []string{"203.0.113.20", "203.0.113.21"}) || changes() != 2 {
		t.Fatalf("after the change: %+v, %d Change calls (want 2)", got, changes())
	}
	untouched("after the change")

	// A failed deploy (v2 never healthy, rolled back) leaves the record
	// set as the release before had it.
	w.commit(spec{version: "v2", config: "a: 1\n", webEnv: "      HEALTH: fail\n", top: recordsYAML(name, "203.0.113.99")}, "v2 broken with new address")
	r = w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "rolled back") {
		t.Fatalf("apply v2 broken:\n%s", r.stderr)
	}
	if got, _ := mine(); !slices.Equal(got.Values, []string{"203.0.113.20", "203.0.113.21"}) || changes() != 2 {
		t.Fatalf("after a failed deploy: %+v, %d Change calls (want 2)", got, changes())
	}
	w.wantServing("v1")

	// Drift: the record set edited in the console is put back by the
	// agent's heal loop.
	w.commit(spec{version: "v1", config: "a: 1\n", top: recordsYAML(name, "203.0.113.20", "203.0.113.21")}, "back to the good addresses")
	w.mustRun(exitOK, "apply")
	before := changes()
	a := w.startAgent("file://"+w.repo.Bare(), "--interval", "1s", "--heal-interval", "1s")
	edited, _ := mine()
	edited.Values, edited.HealthCheckID = []string{"192.0.2.66"}, ""
	fake.PutRecordSet("Z1", edited)
	waitFor(t, "the console edit repaired", 30*time.Second, func() bool {
		got, _ := mine()
		return slices.Equal(got.Values, []string{"203.0.113.20", "203.0.113.21"}) && got.HealthCheckID == "hc-us"
	})
	if changes() != before+1 {
		t.Fatalf("%d Change calls to repair one record set, want 1", changes()-before)
	}
	waitFor(t, "the repair logged", 10*time.Second, func() bool { return strings.Contains(a.stderr.String(), "route53 record set changed") })
	if code := a.stop(); code != 0 {
		t.Fatalf("agent exit %d", code)
	}
	untouched("after the repair")

	// Removal: the latency record set goes, because reconciler wrote it;
	// eu-west-1's share of the name and www stay.
	w.commit(spec{version: "v1", config: "a: 1\n", top: strings.Replace(recordsYAML(name, "203.0.113.20"), "    - hostedZoneId: Z1\n      name: "+name+"\n", "    - hostedZoneId: Z1\n      name: gone-"+name+"\n", 1)}, "rename the record")
	r = w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "- "+name+". A "+w.env+" (zone Z1): no longer declared, and reconciler wrote it") {
		t.Fatalf("diff of the removal:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	if got, ok := mine(); ok {
		t.Fatalf("the record set the env no longer declares is still there: %+v", got)
	}
	untouched("after the removal")

	// A bad record: refused with file:line before any AWS call.
	lists, batches := fake.Calls("ListResourceRecordSets"), changes()
	bad := strings.Replace(recordsYAML(name, "203.0.113.20"), "type: A\n", "type: MX\n", 1)
	w.commit(spec{version: "v1", config: "a: 1\n", top: bad}, "bad record")
	for _, cmd := range []string{"apply", "diff"} {
		r = w.run(cmd)
		if r.code == exitOK || !strings.Contains(r.stderr, "envs/"+w.env+".yaml:") || !strings.Contains(r.stderr, `route53.records[0].type: want A, AAAA or CNAME, got "MX"`) {
			t.Fatalf("%s of a bad record: exit %d\n%s\n%s", cmd, r.code, r.stdout, r.stderr)
		}
	}
	if fake.Calls("ListResourceRecordSets") != lists || changes() != batches {
		t.Fatal("a bad record reached Route 53")
	}
	untouched("after the bad record")
}
