package awscloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/state"
)

// helper is the reconciler-aws built for these tests.
var helper string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reconciler-aws-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if helper, err = testenv.BuildAWSHelper(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// These tests run the helper, which reads the AWS configuration from the
// environment it inherits: they set it with t.Setenv, so they are not
// parallel.

func fakeAWS(t *testing.T) (*testenv.AWS, *awscloud.Loader) {
	a := testenv.FakeAWS(t)
	a.Setenv(t)
	return a, &awscloud.Loader{Helper: helper}
}

// TestThroughHelper: every API of the package reaches the fake through
// the helper with the same results as the SDK code gives in-process.
func TestThroughHelper(t *testing.T) {
	fake, l := fakeAWS(t)
	ctx := context.Background()
	if err := l.Check(ctx); err != nil {
		t.Fatal(err)
	}

	arn, err := awscloud.Identity{Loader: l}.CallerIdentity(ctx)
	if err != nil || arn != "arn:aws:iam::123456789012:user/reconciler-test" {
		t.Fatalf("identity = %q, %v", arn, err)
	}

	cloud := awscloud.Cloud{Loader: l}
	up, err := cloud.Uploader(ctx, "s3://backups/reconciler/")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("archive bytes \x00\xff")
	if url, err := up.Put(ctx, "prod/x.tar.gz", body); err != nil || url != "s3://backups/reconciler/prod/x.tar.gz" {
		t.Fatalf("put = %q, %v", url, err)
	}
	if got := fake.Objects()["backups/reconciler/prod/x.tar.gz"]; !bytes.Equal(got, body) {
		t.Fatalf("stored object = %q", got)
	}
	if _, err := cloud.Uploader(ctx, "backups"); err == nil || !strings.Contains(err.Error(), "want s3://bucket/prefix") {
		t.Fatalf("bad url: %v", err)
	}

	fake.SetRDSInstance("mcp-db", false)
	fake.SetRDSInstance("broken-db", true)
	snaps, err := cloud.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := snaps.Snapshot(ctx, "mcp-db", "reconciler-prod-abc"); err != nil {
		t.Fatal(err)
	}
	if n := fake.Calls("DescribeDBSnapshots"); n < 2 {
		t.Fatalf("%d DescribeDBSnapshots calls: the wait did not poll", n)
	}
	if err := snaps.Snapshot(ctx, "broken-db", "s2"); err == nil || !strings.Contains(err.Error(), `"failed", not available`) {
		t.Fatalf("failed snapshot: %v", err)
	}

	fake.SetHealthCheck("hc-1", "/old", 80)
	hc, err := cloud.HealthChecks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := hc.UpdateHealthCheck(ctx, "hc-1", "/health", 443); err != nil || !changed {
		t.Fatalf("update: %v %v", changed, err)
	}
	if _, err := hc.UpdateHealthCheck(ctx, "hc-nope", "/health", 443); err == nil || !strings.Contains(err.Error(), "NoSuchHealthCheck") {
		t.Fatalf("missing check: %v", err)
	}

	r := awscloud.Route53{Loader: l}
	site := state.SiteHealthCheck{Service: "api", FQDN: "mcp.example.com", Type: "HTTPS", Port: 443, Path: "/health", RequestInterval: 30, FailureThreshold: 3}
	if ids, err := r.SiteCheckIDs(ctx, []state.SiteHealthCheck{site}); err != nil || ids == nil || len(ids) != 0 {
		t.Fatalf("before the check: %v %v", ids, err)
	}
	id, action, err := r.EnsureHealthCheck(ctx, site)
	if err != nil || action != awscloud.HealthCheckCreated {
		t.Fatalf("ensure: %q %q %v", id, action, err)
	}
	if ids, err := r.SiteCheckIDs(ctx, []state.SiteHealthCheck{site}); err != nil || ids["api"] != id {
		t.Fatalf("SiteCheckIDs = %v %v, want api: %s", ids, err, id)
	}

	fake.AddZone("Z1")
	mine := state.RecordSet{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A", SetIdentifier: "prod-us-east-1"}, TTL: 60,
		Values: []string{"203.0.113.10"}, Region: "us-east-1", HealthCheckID: id}
	if err := r.ChangeRecords(ctx, "Z1", []reconciler.RecordChange{{Action: reconciler.RecordUpsert, Record: mine}}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.RecordSets(ctx, "Z1", "mcp.example.com.", "A"); err != nil || !reflect.DeepEqual(got, []state.RecordSet{mine}) {
		t.Fatalf("RecordSets = %+v, %v", got, err)
	}
	stale := mine
	stale.Values = []string{"192.0.2.200"}
	err = r.ChangeRecords(ctx, "Z1", []reconciler.RecordChange{{Action: reconciler.RecordDelete, Record: stale}})
	if err == nil || !strings.Contains(err.Error(), "change Route 53 record sets of zone Z1") || !strings.Contains(err.Error(), "do not match the current values") {
		t.Fatalf("delete with stale values: %v", err)
	}

	fake.VerifySender("deploys@dev-mesh.io")
	m := awscloud.Mailer{Loader: l}
	if id, err := m.SendEmail(ctx, "deploys@dev-mesh.io", []string{"ops@dev-mesh.io"}, "deploy.failed prod", "body text"); err != nil || id != "fake-message-1" {
		t.Fatalf("send: %q, %v", id, err)
	}
	if got := fake.Emails(); len(got) != 1 || got[0].Body != "body text" {
		t.Fatalf("emails %+v", got)
	}
	if _, err := m.SendEmail(ctx, "nobody@example.com", []string{"ops@dev-mesh.io"}, "s", "secret body"); err == nil ||
		!strings.Contains(err.Error(), "MessageRejected") || strings.Contains(err.Error(), "secret body") {
		t.Fatalf("unverified sender: %v", err)
	}
}

// TestSecretsOneCall: the references of both AWS schemes are resolved in
// one request; each scheme's failure comes back apart, naming references
// and no value.
func TestSecretsOneCall(t *testing.T) {
	fake, l := fakeAWS(t)
	fake.SetParameter("/app/db", "db-s3cret")
	fake.SetSecret("app/tokens", `{"api":"tok-api"}`)
	refs := testenv.SecretRefs(t, "ssm:/app/db", "secretsmanager:app/tokens#api")
	vals, errs, err := l.Secrets(context.Background(), refs)
	if err != nil || len(errs) != 0 {
		t.Fatal(err, errs)
	}
	if want := map[state.SecretRef]string{refs[0]: "db-s3cret", refs[1]: "tok-api"}; !reflect.DeepEqual(vals, want) {
		t.Fatalf("values = %v", vals)
	}

	refs = append(refs, testenv.SecretRefs(t, "ssm:/app/nope", "secretsmanager:app/tokens#nokey")...)
	vals, errs, err = l.Secrets(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 0 || len(errs) != 2 {
		t.Fatalf("values %v, errors %v: want every scheme failed", vals, errs)
	}
	if msg := errs["ssm"].Error(); !strings.Contains(msg, "ssm:/app/nope") || !strings.Contains(msg, "no such parameter") || strings.Contains(msg, "s3cret") {
		t.Errorf("ssm error: %s", msg)
	}
	if msg := errs["secretsmanager"].Error(); !strings.Contains(msg, `JSON has no key "nokey"`) || strings.Contains(msg, "tok-api") {
		t.Errorf("secretsmanager error: %s", msg)
	}
}

// TestHelperOutput: run by hand, the helper answers one request on
// stdout with the values and writes nothing on stderr; an unknown op or
// version is refused with a protocol error, exit 0.
func TestHelperOutput(t *testing.T) {
	fake, _ := fakeAWS(t)
	fake.SetParameter("/app/db", "db-s3cret")
	for _, tc := range []struct{ in, want, kind string }{
		{`{"version":1,"op":"secrets.resolve","args":{"refs":["ssm:/app/db"]}}`, `"db-s3cret"`, ""},
		{`{"version":2,"op":"secrets.resolve"}`, "version 2, this reconciler-aws speaks 1", awscloud.KindProtocol},
		{`{"version":1,"op":"ec2.terminate"}`, `unknown op \"ec2.terminate\"`, awscloud.KindProtocol},
		{`garbage`, "read request", awscloud.KindProtocol},
	} {
		cmd := exec.Command(helper)
		var stdout, stderr bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(tc.in), &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if stderr.Len() > 0 {
			t.Errorf("%s: stderr %q", tc.in, stderr.String())
		}
		var resp awscloud.Response
		if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
			t.Fatalf("%s: stdout %q: %v", tc.in, stdout.String(), err)
		}
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("%s: stdout %s lacks %s", tc.in, stdout.String(), tc.want)
		}
		if tc.kind != "" && (resp.Error == nil || resp.Error.Kind != tc.kind) {
			t.Errorf("%s: error %+v, want kind %s", tc.in, resp.Error, tc.kind)
		}
	}
}

// TestSentinelsCrossThePipe: the helper's missing region and missing
// credentials are ErrNoRegion and ErrNoCredentials on this side, with
// their one line of guidance.
func TestSentinelsCrossThePipe(t *testing.T) {
	testenv.BareAWS(t)
	ctx := context.Background()
	l := &awscloud.Loader{Helper: helper}
	l.Use(awscloud.Settings{Region: "us-east-1", File: "envs/dev.yaml"})
	err := l.Check(ctx)
	if !errors.Is(err, awscloud.ErrNoCredentials) || !strings.Contains(err.Error(), "no AWS credentials: tried AWS_ACCESS_KEY_ID") ||
		!strings.Contains(err.Error(), "aws.profile in envs/dev.yaml") || !strings.Contains(err.Error(), awscloud.DiffBaseHint) {
		t.Fatalf("no credentials: %v", err)
	}
	_, _, err = l.Secrets(ctx, testenv.SecretRefs(t, "ssm:/app/db"))
	if !errors.Is(err, awscloud.ErrNoCredentials) {
		t.Fatalf("secrets without credentials: %v", err)
	}
	l.Use(awscloud.Settings{File: "envs/dev.yaml"})
	if err := l.Check(ctx); !errors.Is(err, awscloud.ErrNoRegion) || !strings.Contains(err.Error(), "set aws.region") || !strings.Contains(err.Error(), "envs/dev.yaml") {
		t.Fatalf("no region: %v", err)
	}
}

// TestSnapshotTimeoutSaysStatus: a snapshot that is not available by the
// caller's deadline fails in the helper, before the deadline, with the
// last status it read, as an error that matches DeadlineExceeded (the
// helper is not killed, so its message is not lost).
func TestSnapshotTimeoutSaysStatus(t *testing.T) {
	fake, l := fakeAWS(t)
	fake.SetRDSInstance("slow-db", false)
	fake.HoldRDSSnapshots("slow-db")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	err := awscloud.RDS{Loader: l}.Snapshot(ctx, "slow-db", "s9")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `last status "creating"`) || ctx.Err() != nil {
		t.Fatalf("err = %v (ctx %v), want the helper's timeout with the last status, before the deadline", err, ctx.Err())
	}
}

// TestReleaseMismatch: a helper of another release than the reconciler
// that runs it refuses the request with a protocol error that names both
// releases; the same release, or a request without one, is answered.
func TestReleaseMismatch(t *testing.T) {
	stamped, err := testenv.BuildAWSHelperRelease(t.TempDir(), "v9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	fake, _ := fakeAWS(t)
	fake.SetParameter("/app/db", "db-s3cret")
	ctx := context.Background()
	refs := testenv.SecretRefs(t, "ssm:/app/db")
	for _, release := range []string{"v9.9.9", ""} {
		l := &awscloud.Loader{Helper: stamped, Release: release}
		l.Use(awscloud.Settings{Region: "us-east-1"})
		if _, _, err := l.Secrets(ctx, refs); err != nil {
			t.Fatalf("release %q: %v", release, err)
		}
	}
	l := &awscloud.Loader{Helper: stamped, Release: "v1.0.0"}
	l.Use(awscloud.Settings{Region: "us-east-1"})
	err = l.Check(ctx)
	if !errors.Is(err, awscloud.ErrProtocol) || !strings.Contains(err.Error(), "reconciler v1.0.0") ||
		!strings.Contains(err.Error(), "reconciler-aws is of release v9.9.9") || !strings.Contains(err.Error(), "same release") {
		t.Fatalf("mismatch: %v", err)
	}
	if _, _, err := l.Secrets(ctx, refs); !errors.Is(err, awscloud.ErrProtocol) || strings.Contains(err.Error(), "db-s3cret") {
		t.Fatalf("secrets across releases: %v", err)
	}
}

// script writes an executable shell script standing in for the helper.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "reconciler-aws")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBrokenHelper: a helper that dies, prints garbage or prints two
// values gives an error naming it, with its stderr bounded.
func TestBrokenHelper(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, body, want string }{
		{"dies", `cat >/dev/null; echo "panic: boom" >&2; exit 2`, "reconciler-aws sts.identity"},
		{"garbage", `cat >/dev/null; echo "hello"`, "not a response on stdout"},
		{"two", `cat >/dev/null; echo '{"result":{}}{"result":{}}'`, "not a response on stdout"},
		{"empty", `cat >/dev/null`, "not a response on stdout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &awscloud.Loader{Helper: script(t, tc.body)}
			_, err := awscloud.Identity{Loader: l}.CallerIdentity(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), l.Helper) {
				t.Fatalf("err = %v, want %q and the helper's path", err, tc.want)
			}
		})
	}
	l := &awscloud.Loader{Helper: script(t, `cat >/dev/null; head -c 100000 /dev/zero | tr '\0' x >&2; exit 3`)}
	err := l.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || len(err.Error()) > 5<<10 || !strings.Contains(err.Error(), "more bytes") {
		t.Fatalf("long stderr: %d bytes: %.300s", len(err.Error()), err)
	}
}

// TestCancel: when ctx ends, the helper is killed and the caller gets
// ctx's error.
func TestCancel(t *testing.T) {
	l := &awscloud.Loader{Helper: script(t, `exec sleep 600`)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- awscloud.RDS{Loader: l}.Snapshot(ctx, "db", "s1") }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the call did not end within a minute of the cancel")
	}
}

// TestCheckOnce: Check runs the helper once for the settings of Use, again
// after new settings, and again after a failure.
func TestCheckOnce(t *testing.T) {
	count := filepath.Join(t.TempDir(), "count")
	l := &awscloud.Loader{Helper: script(t, `cat >/dev/null; echo x >> `+count+`; echo '{"result":{"region":"us-east-1"}}'`)}
	ctx := context.Background()
	runs := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
	l.Use(awscloud.Settings{Region: "us-east-1"})
	for range 3 {
		if err := l.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := runs(); n != 1 {
		t.Fatalf("%d runs for three checks, want 1", n)
	}
	l.Use(awscloud.Settings{Region: "eu-west-1"})
	if err := l.Check(ctx); err != nil || runs() != 2 {
		t.Fatalf("after Use: %v, %d runs", err, runs())
	}
}

// TestMissingHelper: without the helper beside the executable or in
// $PATH the error names it, where it looked, and how to install it.
func TestMissingHelper(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := (&awscloud.Loader{}).Check(context.Background())
	if !errors.Is(err, awscloud.ErrNoHelper) {
		t.Fatalf("err = %v, want ErrNoHelper", err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	for _, want := range []string{"reconciler-aws not found", filepath.Dir(exe), "$PATH", "install reconciler-aws beside reconciler", "make build"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	// In $PATH it is found (here a stand-in that answers the check).
	dir := filepath.Dir(script(t, `cat >/dev/null; echo '{"result":{"region":"us-east-1"}}'`))
	t.Setenv("PATH", dir)
	if err := (&awscloud.Loader{}).Check(context.Background()); err != nil {
		t.Fatalf("helper in $PATH: %v", err)
	}
}
