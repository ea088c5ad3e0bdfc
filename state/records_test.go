package state_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/developer-mesh/reconciler/state"
)

// TestRecordSets: a region's records load with their defaults (TTL 60,
// the region aws.region, the set identifier the env's name), in normal
// form (name and CNAME value lower case with a trailing dot, the zone
// without /hostedzone/, values sorted), sorted by key, and the resolved
// desired state carries them with the site checks they name.
func TestRecordSets(t *testing.T) {
	t.Parallel()
	const env = `environment: prod-eu-west-1
aws: {region: eu-west-1}
route53:
  healthChecks: {}
  records:
    - hostedZoneId: /hostedzone/Z1
      name: MCP.Example.com
      type: A
      values: ["203.0.113.11", "203.0.113.10"]
      routing: latency
      healthCheck: {service: api}
    - hostedZoneId: Z1
      name: api.example.com.
      type: CNAME
      ttl: 300
      values: [LB-1.eu-west-1.elb.amazonaws.com]
      routing: failover
      failover: SECONDARY
      setIdentifier: eu
      healthCheck: {id: abcdef12-3456-7890-abcd-ef1234567890}
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
    listen: "80"
    serverName: mcp.example.com
`
	fsys := fstest.MapFS{"envs/prod-eu-west-1.yaml": {Data: []byte(env)}}
	e, err := state.Load(fsys, "prod-eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []state.RecordSet{
		{RecordKey: state.RecordKey{Zone: "Z1", Name: "api.example.com.", Type: "CNAME", SetIdentifier: "eu"}, TTL: 300,
			Values: []string{"lb-1.eu-west-1.elb.amazonaws.com."}, Failover: "SECONDARY", HealthCheckID: "abcdef12-3456-7890-abcd-ef1234567890",
			File: "envs/prod-eu-west-1.yaml", Field: "route53.records[1]"},
		{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A", SetIdentifier: "prod-eu-west-1"}, TTL: 60,
			Values: []string{"203.0.113.10", "203.0.113.11"}, Region: "eu-west-1", HealthCheckService: "api",
			File: "envs/prod-eu-west-1.yaml", Field: "route53.records[0]"},
	}
	if got := e.RecordSets(); !reflect.DeepEqual(got, want) {
		t.Errorf("RecordSets:\n got %+v\nwant %+v", got, want)
	}
	d, err := state.Resolve(e, fsys, "c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Records, want) {
		t.Errorf("Desired.Records = %+v", d.Records)
	}
	if len(d.SiteChecks) != 1 || d.SiteChecks[0].Service != "api" || d.SiteChecks[0].FQDN != "mcp.example.com" {
		t.Errorf("Desired.SiteChecks = %+v, want the check of api", d.SiteChecks)
	}
}

// TestRecordBounds refuses more record sets, or more values in one, than
// the bounds, naming the field, before any AWS call.
func TestRecordBounds(t *testing.T) {
	t.Parallel()
	head := "environment: big\nroute53:\n  records:\n"
	rec := func(i, values int) string {
		v := make([]string, values)
		for j := range v {
			v[j] = fmt.Sprintf("\"10.0.%d.%d\"", j/250, j%250+1)
		}
		return fmt.Sprintf("    - {hostedZoneId: Z1, name: n%d.example.com, type: A, routing: latency, healthCheck: {id: abc-%d}, values: [%s]}\n", i, i, strings.Join(v, ", "))
	}
	var many strings.Builder
	many.WriteString(head)
	for i := range 101 {
		many.WriteString(rec(i, 1))
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"records": {many.String(), "route53.records: want at most 100 record sets in one env, got 101"},
		"values":  {head + rec(0, 401), "route53.records[0].values: want at most 400 values in one record set (Route 53's limit), got 401"},
	} {
		fsys := fstest.MapFS{"envs/big.yaml": {Data: []byte(tc.yaml)}}
		_, err := state.Load(fsys, "big")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "envs/big.yaml:") {
			t.Errorf("%s: got %v, want an error with envs/big.yaml:LINE: %s", name, err, tc.want)
		}
	}
}

// TestRecordSetOfAnotherEnv: a record set whose setIdentifier is another
// env's name, when that env declares the same record set (with its default
// identifier), is refused: the UPSERT would overwrite that env's share of
// the name. The same identifier for a record set the other env does not
// declare is this env's choice.
func TestRecordSetOfAnotherEnv(t *testing.T) {
	t.Parallel()
	victim := latencyEnv("prod-us-east-1")
	region := func(name, setID string) string {
		return `environment: prod-eu-west-1
aws: {region: eu-west-1}
route53:
  records:
    - {hostedZoneId: Z1, name: ` + name + `, type: A, routing: latency, setIdentifier: ` + setID + `, values: ["198.51.100.7"]}
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
`
	}
	for _, tc := range []struct{ name, file, want string }{
		{"claims another env's", region("API.example.com.", "prod-us-east-1"),
			`envs/prod-eu-west-1.yaml:5: route53.records[0]: record set api.example.com. A prod-us-east-1 (zone Z1) is env prod-us-east-1's too: envs/prod-us-east-1.yaml declares it`},
		{"another name", region("www.example.com", "prod-us-east-1"), ""},
		{"no such env", region("api.example.com", "eu"), ""},
		// An identifier that is no env's name, declared by two envs.
		{"the same identifier in two envs", region("api.example.com", "primary"),
			`envs/prod-eu-west-1.yaml:5: route53.records[0]: record set api.example.com. A primary (zone Z1) is env staging-us's too: envs/staging-us.yaml declares it`},
		{"another zone", strings.Replace(region("api.example.com", "primary"), "Z1", "Z2", 1), ""},
	} {
		fsys := fstest.MapFS{"envs/prod-us-east-1.yaml": {Data: []byte(victim)}, "envs/prod-eu-west-1.yaml": {Data: []byte(tc.file)},
			"envs/staging-us.yaml": {Data: []byte(strings.NewReplacer("prod-us-east-1", "staging-us", "values:", "setIdentifier: primary, values:").Replace(victim))},
			"envs/broken.yaml":     {Data: []byte("environment: broken\nroute53: [\n")},
			"envs/prod-base.yaml":  {Data: []byte("services: {}\n")},
			"envs/notes.txt":       {Data: []byte("not an env")}}
		_, err := state.Load(fsys, "prod-eu-west-1")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.want)
		}
	}
	if _, err := state.Load(fstest.MapFS{"envs/prod-us-east-1.yaml": {Data: []byte(victim)}}, "prod-us-east-1"); err != nil {
		t.Errorf("the env that declares it: %v", err)
	}
	// A setIdentifier written in a base file is every region's: each
	// would write the same record set.
	base := strings.Replace(victim, "environment: prod-us-east-1\n", "", 1)
	base = strings.Replace(base, "values:", "setIdentifier: shared, values:", 1)
	fsys := fstest.MapFS{"envs/prod-base.yaml": {Data: []byte(base)},
		"envs/prod-eu-west-1.yaml": {Data: []byte("extends: prod-base.yaml\nenvironment: prod-eu-west-1\n")}}
	_, err := state.Load(fsys, "prod-eu-west-1")
	if want := "envs/prod-base.yaml:4: route53.records[0].setIdentifier: written in envs/prod-base.yaml, which every env that extends it shares"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("setIdentifier in a base: %v, want %s", err, want)
	}
}

// TestRecordSetsOfTooManyEnvs: a record set is checked against at most
// maxOtherEnvs other env files; a commit with more is refused with a
// clear error instead of read without end.
func TestRecordSetsOfTooManyEnvs(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{"envs/prod.yaml": {Data: []byte(latencyEnv("prod"))}}
	for i := range 64 {
		name := fmt.Sprintf("other%02d", i)
		fsys["envs/"+name+".yaml"] = &fstest.MapFile{Data: []byte("environment: " + name + "\n")}
	}
	if _, err := state.Load(fsys, "prod"); err != nil {
		t.Fatalf("64 other env files: %v", err)
	}
	fsys["envs/other64.yaml"] = &fstest.MapFile{Data: []byte("environment: other64\n")}
	if _, err := state.Load(fsys, "prod"); err == nil || !strings.Contains(err.Error(), "envs/prod.yaml:4: route53.records: envs/ holds more than 64 other .yaml files") {
		t.Fatalf("65 other env files: %v", err)
	}
}

// latencyEnv is the env file of env with one service and one latency
// record set, api.example.com A in zone Z1 (the record on line 5).
func latencyEnv(env string) string {
	return `environment: ` + env + `
aws: {region: us-east-1}
route53:
  records:
    - {hostedZoneId: Z1, name: api.example.com, type: A, routing: latency, values: ["203.0.113.10"]}
services:
  api:
    image: ghcr.io/example/api:v1
    containerPort: 8080
`
}
