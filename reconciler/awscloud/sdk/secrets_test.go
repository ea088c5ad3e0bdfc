package sdk_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/state"
)

// These tests drive the real SDK against testenv.FakeAWS on loopback. They
// use t.Setenv (the SDK's default chain reads the environment), so they are
// not parallel.

func fakeAWS(t *testing.T) *testenv.AWS {
	a := testenv.FakeAWS(t)
	a.Setenv(t)
	return a
}

func TestSSMBatchesAndDecrypts(t *testing.T) {
	a := fakeAWS(t)
	ctx := context.Background()
	var refs []string
	want := map[string]string{}
	for i := 0; i < 23; i++ {
		name := fmt.Sprintf("/devops-mcp/test/p%02d", i)
		a.SetParameter(name, fmt.Sprintf("value-%d", i))
		refs = append(refs, "ssm:"+name)
		want["ssm:"+name] = fmt.Sprintf("value-%d", i)
	}
	cfg, err := sdk.Load(ctx, awscloud.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	r := &secrets.Resolver{Backends: map[string]secrets.Backend{"ssm": sdk.NewSSM(cfg)}}
	got, err := r.Resolve(ctx, testenv.SecretRefs(t, refs...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, testenv.SecretValues(t, want)) {
		t.Fatalf("values = %v", got)
	}
	if b := a.Batches(); !reflect.DeepEqual(b, []int{10, 10, 3}) {
		t.Errorf("GetParameters batches = %v, want [10 10 3]", b)
	}

	// Missing parameters are reported together, by name, never a value.
	_, err = r.Resolve(ctx, testenv.SecretRefs(t, "ssm:/devops-mcp/test/p01", "ssm:/devops-mcp/test/nope", "ssm:/devops-mcp/test/gone"))
	if err == nil || !strings.Contains(err.Error(), "ssm:/devops-mcp/test/gone, ssm:/devops-mcp/test/nope: no such parameter") {
		t.Fatalf("missing parameters: %v", err)
	}
	if strings.Contains(err.Error(), "value-1") {
		t.Errorf("error shows a value: %v", err)
	}
}

func TestSecretsManager(t *testing.T) {
	a := fakeAWS(t)
	ctx := context.Background()
	a.SetSecret("test/tokens", `{"api":"tok-api","port":5432,"nested":{"a":1}}`)
	a.SetSecret("test/plain", "plain-s3cret")
	cfg, err := sdk.Load(ctx, awscloud.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	b := sdk.NewSecretsManager(cfg)
	got, err := b.Resolve(ctx, testenv.SecretRefs(t, "secretsmanager:test/tokens#api", "secretsmanager:test/tokens#port", "secretsmanager:test/plain"))
	if err != nil {
		t.Fatal(err)
	}
	want := testenv.SecretValues(t, map[string]string{"secretsmanager:test/tokens#api": "tok-api", "secretsmanager:test/tokens#port": "5432", "secretsmanager:test/plain": "plain-s3cret"})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("values = %v", got)
	}
	if n := a.Calls("secretsmanager.GetSecretValue"); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2 (one per secret)", n)
	}

	_, err = b.Resolve(ctx, testenv.SecretRefs(t, "secretsmanager:test/tokens#missing", "secretsmanager:test/plain#key", "secretsmanager:test/absent"))
	for _, want := range []string{
		`secret secretsmanager:test/tokens#missing: the secret's JSON has no key "missing"`,
		`secret secretsmanager:test/plain#key: the secret is not a JSON object`,
		`secret secretsmanager:test/absent: GetSecretValue:`, "ResourceNotFoundException",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err != nil && (strings.Contains(err.Error(), "tok-api") || strings.Contains(err.Error(), "plain-s3cret")) {
		t.Errorf("error shows a value: %v", err)
	}
}

func TestInvalidCredentials(t *testing.T) {
	a := fakeAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDWRONG")
	ctx := context.Background()
	a.SetParameter("/devops-mcp/test/db", "db-s3cret")
	cfg, err := sdk.Load(ctx, awscloud.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdk.NewIdentity(cfg).CallerIdentity(ctx); err == nil || !strings.Contains(err.Error(), "AWS credentials are not valid") || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Errorf("identity with a wrong key: %v", err)
	}
	_, err = sdk.NewSSM(cfg).Resolve(ctx, testenv.SecretRefs(t, "ssm:/devops-mcp/test/db"))
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") || strings.Contains(err.Error(), "db-s3cret") {
		t.Errorf("ssm with a wrong key: %v", err)
	}
}

func TestIdentityAndS3(t *testing.T) {
	a := fakeAWS(t)
	ctx := context.Background()
	cfg, err := sdk.Load(ctx, awscloud.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := sdk.NewIdentity(cfg).CallerIdentity(ctx)
	if err != nil || arn != "arn:aws:iam::123456789012:user/reconciler-test" {
		t.Fatalf("identity = %q, %v", arn, err)
	}
	s, err := sdk.NewS3(cfg, "s3://backups/reconciler/")
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Put(ctx, "prod/x.tar.gz", []byte("archive bytes"))
	if err != nil || url != "s3://backups/reconciler/prod/x.tar.gz" {
		t.Fatalf("put = %q, %v", url, err)
	}
	if got := string(a.Objects()["backups/reconciler/prod/x.tar.gz"]); got != "archive bytes" {
		t.Fatalf("stored object = %q (objects %v)", got, a.Objects())
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1") // no metadata service here
	if _, err := sdk.Load(ctx, awscloud.Settings{}); err == nil {
		t.Errorf("Load without a region succeeded")
	}
}

// TestMissingReportedAtOnce: parameters missing from several GetParameters
// batches, a missing Secrets Manager secret and an unset variable are all
// named in one error, in a stable order, without any value.
func TestMissingReportedAtOnce(t *testing.T) {
	a := fakeAWS(t)
	ctx := context.Background()
	var refs, wantMissing []string
	for i := 0; i < 25; i++ {
		name := fmt.Sprintf("/devops-mcp/check/p%02d", i)
		refs = append(refs, "ssm:"+name)
		if i%6 == 0 { // p00, p06, p12, p18, p24: one in each batch of ten, two in the first
			wantMissing = append(wantMissing, "ssm:"+name)
			continue
		}
		a.SetParameter(name, fmt.Sprintf("value-%d", i))
	}
	refs = append(refs, "secretsmanager:check/absent", "env:RECONCILER_TEST_UNSET_VARIABLE")
	cfg, err := sdk.Load(ctx, awscloud.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	r := &secrets.Resolver{
		LookupEnv: func(string) (string, bool) { return "", false },
		Backends:  map[string]secrets.Backend{"ssm": sdk.NewSSM(cfg), "secretsmanager": sdk.NewSecretsManager(cfg)},
	}
	parsed := make([]state.SecretRef, len(refs))
	for i, ref := range refs {
		if parsed[i], err = state.ParseSecretRef(ref); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.Resolve(ctx, parsed)
	if err == nil {
		t.Fatal("resolved with missing parameters")
	}
	msg := err.Error()
	if want := strings.Join(wantMissing, ", ") + ": no such parameter in SSM Parameter Store"; !strings.Contains(msg, want) {
		t.Errorf("error does not list every missing parameter as %q:\n%s", want, msg)
	}
	for _, want := range []string{"secretsmanager:check/absent", "env:RECONCILER_TEST_UNSET_VARIABLE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "value-") {
		t.Errorf("error shows a value: %s", msg)
	}
	_, err2 := r.Resolve(ctx, parsed)
	if err2 == nil || err2.Error() != msg {
		t.Errorf("a second run reads differently:\n%v\n---\n%s", err2, msg)
	}
}
