package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
	"github.com/developer-mesh/reconciler/reconciler/notify"
	"github.com/developer-mesh/reconciler/state"
)

// TestEmailThroughSES: an email receiver gets the event through the real
// SES client against the loopback AWS endpoint, only for its events; a
// rejected sender and a missing mailer are counted as failures; no secret
// (the Slack URL's token) reaches an email, a log line or an error.
func TestEmailThroughSES(t *testing.T) {
	t.Parallel()
	fake := testenv.FakeAWS(t)
	fake.VerifySender("deploys@dev-mesh.io")
	cfg := aws.Config{Region: fake.Region, BaseEndpoint: aws.String(fake.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(fake.AccessKey, fake.SecretKey, "")}
	const token = "T000-B000-s3cr3tSlackToken"
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(slack.Close)
	targets := []state.Notify{
		{Format: "email", From: "deploys@dev-mesh.io", To: []string{"ops@dev-mesh.io", "oncall@dev-mesh.io"}, Events: []state.EventName{state.EventDeployFailed}},
		{Format: "email", From: "unverified@example.com", To: []string{"ops@dev-mesh.io"}, Events: []state.EventName{state.EventDeployFailed}},
		{Format: "slack", URL: slack.URL + "/services/" + token},
	}
	core, logs := observer.New(zap.DebugLevel)
	n := notify.New(targets, zap.New(core)).WithMailer(sdk.NewSES(cfg))
	ctx := context.Background()
	ev := reconciler.Event{Name: "deploy.failed", Env: "prod", Commit: "6c94f44c1ea7aaaaaaaa", Author: "Dev <dev@x>", Message: "bump rest-api",
		Services: []reconciler.EventService{{Name: "rest-api", OldImage: "api:v1", NewImage: "api:v2"}},
		Error:    "wait-healthy rest-api/green: not healthy; rolled back"}
	n.Notify(ctx, ev)
	n.Notify(ctx, reconciler.Event{Name: "deploy.succeeded", Env: "prod", Commit: "abc"}) // not an email event
	n.Close(20 * time.Second)

	emails := fake.Emails()
	if len(emails) != 1 {
		t.Fatalf("SES got %d emails, want 1: %+v", len(emails), emails)
	}
	e := emails[0]
	if e.From != "deploys@dev-mesh.io" || !slices.Equal(e.To, []string{"ops@dev-mesh.io", "oncall@dev-mesh.io"}) || e.Subject != "[reconciler] prod: deploy.failed at 6c94f44c1ea7" {
		t.Fatalf("email %+v", e)
	}
	for _, want := range []string{"deploy.failed in prod at commit 6c94f44c1ea7aaaaaaaa", "rest-api: api:v1 -> api:v2", "not healthy; rolled back", "Author: Dev <dev@x>"} {
		if !strings.Contains(e.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, e.Body)
		}
	}
	// Sent: the verified email. Failed: the unverified sender, the Slack
	// receiver twice (both events).
	if n.Sent() != 1 || n.Failed() != 3 {
		t.Errorf("sent %d failed %d, want 1 and 3", n.Sent(), n.Failed())
	}
	var all strings.Builder
	for _, l := range logs.All() {
		fmt.Fprintf(&all, "%s %v\n", l.Message, l.ContextMap())
	}
	if !strings.Contains(all.String(), "MessageRejected") || !strings.Contains(all.String(), "email to 1 recipient(s)") {
		t.Errorf("the rejected email is not logged with SES's reason:\n%s", all.String())
	}
	if strings.Contains(all.String(), token) || strings.Contains(e.Body, token) {
		t.Errorf("the Slack token leaked:\n%s", all.String())
	}

	// Without a mailer: counted and logged, nothing sent.
	n2 := notify.New(targets[:1], zap.New(core))
	n2.Notify(ctx, ev)
	n2.Close(time.Second)
	if n2.Failed() != 1 || len(fake.Emails()) != 1 {
		t.Errorf("without a mailer: failed %d, emails %d", n2.Failed(), len(fake.Emails()))
	}
}
