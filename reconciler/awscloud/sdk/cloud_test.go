package sdk_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
	"github.com/developer-mesh/reconciler/state"
)

// config points the real SDK at the fake, without touching the process's
// environment (so the tests run in parallel).
func config(a *testenv.AWS) aws.Config {
	return aws.Config{Region: a.Region, BaseEndpoint: aws.String(a.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(a.AccessKey, a.SecretKey, "")}
}

// TestRDSSnapshot: a snapshot is created and waited for until available;
// the same id again waits for the existing one; a snapshot that fails or
// an instance that does not exist is an error.
func TestRDSSnapshot(t *testing.T) {
	t.Parallel()
	fake := testenv.FakeAWS(t)
	fake.SetRDSInstance("mcp-db", false)
	fake.SetRDSInstance("broken-db", true)
	r := sdk.NewRDS(config(fake))
	ctx := context.Background()
	if err := r.Snapshot(ctx, "mcp-db", "reconciler-prod-abc"); err != nil {
		t.Fatal(err)
	}
	if err := r.Snapshot(ctx, "mcp-db", "reconciler-prod-abc"); err != nil {
		t.Fatalf("same id again: %v", err)
	}
	if got := fake.Snapshots(); !slices.Equal(got, []string{"reconciler-prod-abc"}) {
		t.Fatalf("snapshots %v", got)
	}
	if n := fake.Calls("DescribeDBSnapshots"); n < 2 {
		t.Fatalf("%d DescribeDBSnapshots calls: the wait did not poll", n)
	}
	if err := r.Snapshot(ctx, "broken-db", "s2"); err == nil || !strings.Contains(err.Error(), `"failed", not available`) {
		t.Fatalf("failed snapshot: %v", err)
	}
	if err := r.Snapshot(ctx, "nope-db", "s3"); err == nil || !strings.Contains(err.Error(), "DBInstanceNotFound") {
		t.Fatalf("missing instance: %v", err)
	}
}

// TestRoute53HealthCheck: path and port are updated when they differ,
// nothing is sent when they match, and a missing check is an error.
func TestRoute53HealthCheck(t *testing.T) {
	t.Parallel()
	fake := testenv.FakeAWS(t)
	fake.SetHealthCheck("hc-1", "/old", 80)
	r := sdk.NewRoute53(config(fake))
	ctx := context.Background()
	changed, err := r.UpdateHealthCheck(ctx, "hc-1", "/health", 443)
	if err != nil || !changed {
		t.Fatalf("update: %v %v", changed, err)
	}
	if got := fake.HealthCheck("hc-1"); got != (testenv.HealthCheck{Path: "/health", Port: 443, Version: 2}) {
		t.Fatalf("health check %+v", got)
	}
	changed, err = r.UpdateHealthCheck(ctx, "hc-1", "/health", 443)
	if err != nil || changed || fake.Calls("UpdateHealthCheck") != 1 {
		t.Fatalf("unchanged: %v %v, %d updates", changed, err, fake.Calls("UpdateHealthCheck"))
	}
	if _, err := r.UpdateHealthCheck(ctx, "hc-nope", "/health", 443); err == nil || !strings.Contains(err.Error(), "NoSuchHealthCheck") {
		t.Fatalf("missing check: %v", err)
	}
}

// TestSESSendEmail: a message from a verified sender reaches SES with its
// subject, body and recipients; an unverified sender is rejected with
// SES's error.
func TestSESSendEmail(t *testing.T) {
	t.Parallel()
	fake := testenv.FakeAWS(t)
	fake.VerifySender("deploys@dev-mesh.io")
	s := sdk.NewSES(config(fake))
	ctx := context.Background()
	id, err := s.SendEmail(ctx, "deploys@dev-mesh.io", []string{"ops@dev-mesh.io", "oncall@dev-mesh.io"}, "deploy.failed prod", "body text")
	if err != nil || id != "fake-message-1" {
		t.Fatalf("send: %q, %v", id, err)
	}
	got := fake.Emails()
	if len(got) != 1 || got[0].Subject != "deploy.failed prod" || got[0].Body != "body text" || !slices.Equal(got[0].To, []string{"ops@dev-mesh.io", "oncall@dev-mesh.io"}) {
		t.Fatalf("emails %+v", got)
	}
	_, err = s.SendEmail(ctx, "nobody@example.com", []string{"ops@dev-mesh.io"}, "s", "secret body")
	if err == nil || !strings.Contains(err.Error(), "MessageRejected") || strings.Contains(err.Error(), "secret body") {
		t.Fatalf("unverified sender: %v", err)
	}
}

// TestRoute53EnsureHealthCheck: a site's check is created when missing,
// left alone when it matches, updated when the env changes its path, port
// or threshold, and a new type (HTTP to HTTPS) makes a new check.
func TestRoute53EnsureHealthCheck(t *testing.T) {
	t.Parallel()
	fake := testenv.FakeAWS(t)
	fake.SetHealthCheck("other-check", "/", 80) // example.com, someone else's
	r := sdk.NewRoute53(config(fake))
	ctx := context.Background()
	site := state.SiteHealthCheck{Service: "mcp-server", FQDN: "mcp.dev-mesh.io", Type: "HTTPS", Port: 443, Path: "/health", RequestInterval: 30, FailureThreshold: 3}

	id, action, err := r.EnsureHealthCheck(ctx, site)
	if err != nil || action != awscloud.HealthCheckCreated {
		t.Fatalf("first: %q %q %v", id, action, err)
	}
	want := testenv.HealthCheck{Path: "/health", Port: 443, Version: 1, FQDN: "mcp.dev-mesh.io", Type: "HTTPS", FailureThreshold: 3, RequestInterval: 30}
	got := fake.HealthCheck(id)
	got.CallerReference = ""
	if got != want {
		t.Fatalf("created %+v, want %+v", got, want)
	}
	if id2, action, err := r.EnsureHealthCheck(ctx, site); err != nil || id2 != id || action != awscloud.HealthCheckUnchanged || fake.Calls("UpdateHealthCheck") != 0 {
		t.Fatalf("again: %q %q %v, %d updates", id2, action, err, fake.Calls("UpdateHealthCheck"))
	}

	site.Path, site.FailureThreshold = "/healthz", 5
	if id3, action, err := r.EnsureHealthCheck(ctx, site); err != nil || id3 != id || action != awscloud.HealthCheckUpdated {
		t.Fatalf("changed: %q %q %v", id3, action, err)
	}
	if got := fake.HealthCheck(id); got.Path != "/healthz" || got.FailureThreshold != 5 || got.Version != 2 || got.Port != 443 {
		t.Fatalf("updated %+v", got)
	}

	site.Type, site.Port = "HTTP", 80
	id4, action, err := r.EnsureHealthCheck(ctx, site)
	if err != nil || id4 == id || action != awscloud.HealthCheckCreated {
		t.Fatalf("new type: %q %q %v", id4, action, err)
	}
	if ids := fake.HealthCheckIDs(); len(ids) != 3 {
		t.Fatalf("checks %v, want other-check and two of mcp.dev-mesh.io", ids)
	}
	if fake.HealthCheck("other-check").Version != 1 {
		t.Fatalf("someone else's check was changed")
	}
}
