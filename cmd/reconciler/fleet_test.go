package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/fleet"
	"github.com/developer-mesh/reconciler/reconciler/fleet/redisstore"
	"github.com/developer-mesh/reconciler/state"
)

// TestFleetStatus reads a fleet from a real redis-server, with the
// password from an env: secret reference: each host's applied commit, last
// result, health, the lease holder and the halt.
func TestFleetStatus(t *testing.T) {
	r := testenv.StartRedis(t, false)
	env, repo, st := fleetFixture(t, r, "[web-1, web-2, web-3]\n  canary: web-1")
	ctx := context.Background()
	now := time.Now()
	l, err := st.Acquire(ctx, "web-1/100", 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Record(ctx, l, fleet.Result{Host: "web-1", Commit: "aaaaaaaaaaaa1", Result: fleet.Succeeded, At: now}))
	must(st.Record(ctx, l, fleet.Result{Host: "web-2", Commit: "aaaaaaaaaaaa1", Result: fleet.Failed, Error: "health check failed", At: now}))
	must(st.Beat(ctx, fleet.Health{Host: "web-1", Commit: "aaaaaaaaaaaa1", Healthy: true, At: now}, time.Minute))
	must(st.Beat(ctx, fleet.Health{Host: "web-2", Commit: "aaaaaaaaaaaa0", Problem: "web is crash-looping", At: now}, time.Minute))

	code, out, errOut := runCLI(t, "fleet", "status", "--env", env, "--repo", repo.Dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"web-1 (canary)", "succeeded aaaaaaaaaaaa ", "healthy", "held by web-1/100 (token 1)",
		"web-2", "failed aaaaaaaaaaaa ", "unhealthy: web is crash-looping", "web-3", "unknown", "halted: the rollout of aaaaaaaaaaaa stopped at web-2 (health check failed)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, r.Password) {
		t.Errorf("the store's password is shown")
	}

	code, out, errOut = runCLI(t, "fleet", "status", "--env", env, "--repo", repo.Dir, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var v fleetView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(v.Hosts) != 3 || v.Hosts[0].Applied != "aaaaaaaaaaaa1" || v.Hosts[0].LeaseSlot == nil || v.Hosts[1].LastResult.Result != fleet.Failed || v.Hosts[2].Health != "unknown" || v.Halt == nil {
		t.Errorf("json: %+v", v)
	}
	// The field names docs/reference.md gives.
	var raw struct {
		Hosts  []map[string]json.RawMessage
		Leases []map[string]json.RawMessage
		Halt   map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	_ = json.Unmarshal([]byte(out), &top)
	has := func(what string, m map[string]json.RawMessage, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("json: %s has no %q: %v", what, k, m)
			}
		}
	}
	has("the object", top, "env", "store", "hosts", "leases", "halt")
	if len(raw.Hosts) == 3 && len(raw.Leases) == 1 {
		has("hosts[0]", raw.Hosts[0], "host", "canary", "appliedCommit", "lastResult", "health", "leaseSlot")
		has("hosts[1]", raw.Hosts[1], "problem")
		var last map[string]json.RawMessage
		_ = json.Unmarshal(raw.Hosts[1]["lastResult"], &last)
		has("lastResult", last, "host", "commit", "result", "error", "at", "token")
		has("leases[0]", raw.Leases[0], "slot", "token", "holder", "expires")
		has("halt", raw.Halt, "commit", "host", "error", "at")
	} else {
		t.Errorf("json: %d hosts, %d leases", len(raw.Hosts), len(raw.Leases))
	}

	r.Stop()
	code, out, errOut = runCLI(t, "fleet", "status", "--env", env, "--repo", repo.Dir)
	if code == 0 || !strings.Contains(errOut, "coordination store "+r.URL()) {
		t.Errorf("store down: exit %d\n%s%s", code, out, errOut)
	}
}

// TestFleetStatusRegion: fleet status of a region env with fleet.after
// says whether it may start the commit read, from the store of the region
// before it, as its agents decide.
func TestFleetStatusRegion(t *testing.T) {
	r := testenv.StartRedis(t, false)
	u := "i18" + testenv.UniqueEnv(t)
	t.Setenv("I18_REGION_PASSWORD", r.Password)
	repo := testenv.NewRepo(t)
	repo.Write("envs/"+u+"-base.yaml", "services:\n  web:\n    image: example.com/web:v1\n    containerPort: 8080\n")
	repo.Write("envs/"+u+"-r1.yaml", "extends: "+u+"-base.yaml\nenvironment: "+u+"-r1\nfleet:\n  store: "+r.URL()+"\n  auth: env:I18_REGION_PASSWORD\n  hosts: [a1]\n")
	repo.Write("envs/"+u+"-r2.yaml", "extends: "+u+"-base.yaml\nenvironment: "+u+"-r2\nfleet:\n  store: "+r.URL()+"\n  auth: env:I18_REGION_PASSWORD\n  hosts: [b1]\n  after: "+u+"-r1\n  afterBake: 10m\n")
	c := repo.Commit("regions")
	status := func() string {
		t.Helper()
		code, out, errOut := runCLI(t, "fleet", "status", "--env", u+"-r2", "--repo", repo.Dir)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		return out
	}
	if out := status(); !strings.Contains(out, "region: after "+u+"-r1: this env does not start "+c[:12]+" yet: waiting for region "+u+"-r1 to deploy "+c[:12]+" first (host a1)") {
		t.Fatalf("before r1 deployed:\n%s", out)
	}
	ctx := context.Background()
	st, err := redisstore.Open(u+"-r1", redisstore.Options{URL: r.URL(), Password: r.Password})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.Acquire(ctx, "a1/1", 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-time.Minute)
	if err := st.Record(ctx, l, fleet.Result{Host: "a1", Commit: c, Result: fleet.Succeeded, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := st.Beat(ctx, fleet.Health{Host: "a1", Commit: c, Healthy: true, At: time.Now(), Since: at}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if out := status(); !strings.Contains(out, "yet: region "+u+"-r1 bakes "+c[:12]+" until "+at.Add(10*time.Minute).UTC().Format(time.RFC3339)) {
		t.Fatalf("while r1 bakes:\n%s", out)
	}
	code, out, errOut := runCLI(t, "fleet", "status", "--env", u+"-r2", "--repo", repo.Dir, "-o", "json")
	var v fleetView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.After == nil || v.After.Env != u+"-r1" || v.After.Commit != c || !strings.Contains(v.After.Waiting, "bakes") {
		t.Fatalf("json: exit %d %+v\n%s%s", code, v.After, out, errOut)
	}
	if strings.Contains(out, r.Password) {
		t.Fatal("the store's password is shown")
	}
}

// TestFleetAuthWithEnvAWS: the agent reads an ssm: fleet.auth with the
// env's aws settings (here aws.region, the host having none), as every
// other secret of the env is read, not with the host's defaults.
func TestFleetAuthWithEnvAWS(t *testing.T) {
	r := testenv.StartRedis(t, false)
	aws := testenv.FakeAWS(t)
	aws.Setenv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	env := "i18" + testenv.UniqueEnv(t)
	aws.SetParameter("/"+env+"/redis", r.Password)
	e := &state.Env{Environment: env, AWS: &state.AWS{Region: aws.Region},
		Fleet: &state.Fleet{Store: r.URL(), Auth: "ssm:/" + env + "/redis", Hosts: []string{"h1"}, Parallel: 1, LeaseTTL: &state.Duration{Duration: 30 * time.Second}}}
	g := &globals{stdout: io.Discard, stderr: io.Discard, stateDir: t.TempDir(), log: zap.NewNop(), aws: &awscloud.Loader{Helper: testAWSHelper}}
	deployed := false
	gate := fleetGate(g, env, "h1", time.Minute, func(agent.Revision, string) (*state.Env, error) { return e, nil },
		func(context.Context, agent.Revision, agent.Mode) (agent.Outcome, error) {
			deployed = true
			return agent.Outcome{}, nil
		})
	if _, err := gate.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy); err != nil || !deployed {
		t.Fatalf("sync: %v, deployed %v; want the store opened with the password from SSM in %s", err, deployed, aws.Region)
	}
}

// TestFleetStatusEscapesControls: text from the store (a deploy error
// quoting a program's output, a holder, a commit) is shown with its
// control characters escaped: it cannot clear the terminal or add lines
// that look like the table's.
func TestFleetStatusEscapesControls(t *testing.T) {
	r := testenv.StartRedis(t, false)
	env, repo, st := fleetFixture(t, r, "[web-1, web-2]")
	ctx := context.Background()
	l, err := st.Acquire(ctx, "web-1/1\x1b[8m", 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Record(ctx, l, fleet.Result{Host: "web-1", Commit: "c0ffee\x1b[2J", Result: fleet.Failed,
		Error: "smoke failed: \x1b[2J\r\nweb-2  c0ffee  succeeded  healthy  -", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.Beat(ctx, fleet.Health{Host: "web-2", Problem: "crash\nweb-3 healthy", At: time.Now()}, time.Minute); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "fleet", "status", "--env", env, "--repo", repo.Dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.ContainsAny(out, "\x1b\r") || strings.Count(out, "\n") != 4 {
		t.Errorf("control characters reach the terminal:\n%q", out)
	}
	for _, want := range []string{`smoke failed: \x1b[2J\r\nweb-2`, `held by web-1/1\x1b[8m`, `unhealthy: crash\nweb-3 healthy`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

// TestFleetUnknownSubcommand: "fleet" alone prints its help, and an
// unknown subcommand is an error (exit 1), as any bad command line is; it
// printed the help and exited 0.
func TestFleetUnknownSubcommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, "fleet", "stauts")
	if code != 1 || !strings.Contains(errOut, `unknown command "stauts" for "reconciler fleet"`) {
		t.Errorf("fleet stauts: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "fleet")
	if code != 0 || !strings.Contains(out, "status") {
		t.Errorf("fleet: exit %d\n%s%s", code, out, errOut)
	}
}

// TestFleetAuthNotReadIsNotUnreachable: a fleet.auth reference that does
// not resolve (here an env: variable the agent's environment lacks) is
// said as such: the store was never dialed, so "unreachable" would send
// the operator to the network instead of to the agent's settings.
func TestFleetAuthNotReadIsNotUnreachable(t *testing.T) {
	env := "i18" + testenv.UniqueEnv(t)
	e := &state.Env{Environment: env,
		Fleet: &state.Fleet{Store: "redis://127.0.0.1:1", Auth: "env:I18_UNSET_PASSWORD", Hosts: []string{"h1"}, Parallel: 1, LeaseTTL: &state.Duration{Duration: 30 * time.Second}}}
	t.Setenv("I18_UNSET_PASSWORD", "") // restored after the test
	os.Unsetenv("I18_UNSET_PASSWORD")
	g := &globals{stdout: io.Discard, stderr: io.Discard, stateDir: t.TempDir(), log: zap.NewNop(), aws: &awscloud.Loader{Helper: testAWSHelper}}
	gate := fleetGate(g, env, "h1", time.Minute, func(agent.Revision, string) (*state.Env, error) { return e, nil },
		func(context.Context, agent.Revision, agent.Mode) (agent.Outcome, error) {
			t.Error("deployed without the store")
			return agent.Outcome{}, nil
		})
	if _, err := gate.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy); err == nil {
		t.Fatal("sync: no error")
	}
	w := gate.Status().Waiting
	if strings.Contains(w, "unreachable") || !strings.Contains(w, "fleet.auth") || !strings.Contains(w, "I18_UNSET_PASSWORD") || !strings.Contains(w, "deploying nothing new") {
		t.Errorf("waiting %q, want it to say that fleet.auth was not read, and that nothing new deploys", w)
	}
	// Set but empty: no AUTH would be sent, which is never meant.
	t.Setenv("I18_UNSET_PASSWORD", "")
	if _, err := gate.Sync(context.Background(), agent.Revision{Hash: "c1"}, agent.Deploy); err == nil {
		t.Fatal("sync with an empty password: no error")
	}
	if w := gate.Status().Waiting; strings.Contains(w, "unreachable") || !strings.Contains(w, "env:I18_UNSET_PASSWORD is empty") {
		t.Errorf("waiting %q with an empty password, want it to say that fleet.auth is empty", w)
	}
}

// fleetFixture commits, in a new repository, an env (a fresh name) of one
// web service with a fleet on r: AUTH from env:I18_FLEET_PASSWORD (set to
// r's password), then "hosts: " and hosts (more lines of the fleet may
// follow it). It opens that env's store as an agent would; the store is
// closed when the test ends.
func fleetFixture(t *testing.T, r *testenv.Redis, hosts string) (env string, repo *testenv.Repo, st *redisstore.Store) {
	t.Helper()
	env = "i18" + testenv.UniqueEnv(t)
	t.Setenv("I18_FLEET_PASSWORD", r.Password)
	repo = testenv.NewRepo(t)
	repo.Write("envs/"+env+".yaml", "environment: "+env+"\nservices:\n  web:\n    image: example.com/web:v1\n    containerPort: 8080\n"+
		"fleet:\n  store: "+r.URL()+"\n  auth: env:I18_FLEET_PASSWORD\n  hosts: "+hosts+"\n")
	repo.Commit("fleet")
	st, err := redisstore.Open(env, redisstore.Options{URL: r.URL(), Password: r.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return env, repo, st
}
