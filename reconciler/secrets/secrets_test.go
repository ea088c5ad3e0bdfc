package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/secrets"
	"github.com/developer-mesh/reconciler/state"
)

// failing is a Backend that fails every reference with the same message.
type failing struct{ msg string }

func (f failing) Resolve(context.Context, []state.SecretRef) (map[state.SecretRef]string, error) {
	return nil, errors.New(f.msg)
}

func TestResolveEnvAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, []byte("file-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &secrets.Resolver{LookupEnv: func(k string) (string, bool) { return "env-" + k, k == "TOKEN" }}
	got, err := r.Resolve(context.Background(), testenv.SecretRefs(t, "env:TOKEN", "file:"+path))
	if err != nil {
		t.Fatal(err)
	}
	if want := testenv.SecretValues(t, map[string]string{"env:TOKEN": "env-TOKEN", "file:" + path: "file-s3cret"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("values = %v, want %v", got, want)
	}
}

// TestResolveErrorOrder: every failing reference is reported, and the
// joined error reads the same whatever the order of the references and of
// the backends' map.
func TestResolveErrorOrder(t *testing.T) {
	r := &secrets.Resolver{
		LookupEnv: func(string) (string, bool) { return "", false },
		Backends: map[string]secrets.Backend{
			state.SchemeSSM:            failing{"secrets ssm:/b: no such parameter"},
			state.SchemeSecretsManager: failing{"secret secretsmanager:a: GetSecretValue: denied"},
		},
	}
	refs := testenv.SecretRefs(t, "ssm:/b", "env:Z", "secretsmanager:a", "file:/nonexistent/reconciler-test", "env:A")
	want := "secret env:A: environment variable A is not set\n" +
		"secret env:Z: environment variable Z is not set\n" +
		"secret file:/nonexistent/reconciler-test: open /nonexistent/reconciler-test: no such file or directory\n" +
		"secret secretsmanager:a: GetSecretValue: denied\n" +
		"secrets ssm:/b: no such parameter"
	for i := 0; i < 10; i++ {
		_, err := r.Resolve(context.Background(), refs)
		if err == nil || err.Error() != want {
			t.Fatalf("error:\n%v\nwant:\n%s", err, want)
		}
		slices.Reverse(refs)
	}
	delete(r.Backends, state.SchemeSSM)
	_, err := r.Resolve(context.Background(), testenv.SecretRefs(t, "ssm:/b", "ssm:/a"))
	if !errors.Is(err, secrets.ErrUnsupported) || err.Error() != "secrets ssm:/a, ssm:/b: secret backend not available: ssm" {
		t.Fatalf("no ssm backend: %v", err)
	}
}

// TestResolveGuard: file: cannot read the state dir (its hash key), also
// through a link, and env: cannot read reconciler's own variables or the
// host's AWS credentials, nor, with an allow-list, any variable not in it.
// No value is in any error.
func TestResolveGuard(t *testing.T) {
	stateDir := t.TempDir()
	key := filepath.Join(stateDir, "hash.key")
	if err := os.WriteFile(key, []byte("KEYVALUE"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "innocent")
	if err := os.Symlink(key, link); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "VALUE-" + k, true }
	r := &secrets.Resolver{LookupEnv: env, Guard: secrets.Guard{DenyDirs: []string{stateDir}}}
	for _, ref := range []string{"file:" + key, "file:" + link,
		"env:RECONCILER_GIT_TOKEN", "env:RECONCILER_WEBHOOK_SECRET", "env:AWS_SECRET_ACCESS_KEY"} {
		_, err := r.Resolve(context.Background(), testenv.SecretRefs(t, ref))
		if err == nil || strings.Contains(err.Error(), "VALUE") {
			t.Errorf("%s: %v; want a refusal without the value", ref, err)
		}
	}
	if _, err := r.Resolve(context.Background(), testenv.SecretRefs(t, "env:DB_PASSWORD")); err != nil {
		t.Errorf("env:DB_PASSWORD without an allow-list: %v", err)
	}
	r.AllowEnv = []string{"DB_PASSWORD"}
	if _, err := r.Resolve(context.Background(), testenv.SecretRefs(t, "env:DB_PASSWORD")); err != nil {
		t.Errorf("env:DB_PASSWORD in the allow-list: %v", err)
	}
	if _, err := r.Resolve(context.Background(), testenv.SecretRefs(t, "env:HOME")); err == nil || !strings.Contains(err.Error(), "not in --secret-env-allow") {
		t.Errorf("env:HOME outside the allow-list: %v", err)
	}
}

// TestOnDemandOneAWSCall: the AWS references of one Resolve go to AWS in
// one call, whatever their schemes; env: and file: references only never
// call it; a scheme's error is reported beside the others.
func TestOnDemandOneAWSCall(t *testing.T) {
	var calls [][]state.SecretRef
	aws := func(_ context.Context, refs []state.SecretRef) (map[state.SecretRef]string, map[string]error, error) {
		calls = append(calls, refs)
		vals := map[state.SecretRef]string{}
		for _, r := range refs {
			if r.Scheme == state.SchemeSSM {
				vals[r] = "v-" + r.Name
			}
		}
		return vals, map[string]error{state.SchemeSecretsManager: errors.New("secret secretsmanager:gone: GetSecretValue: ResourceNotFoundException")}, nil
	}
	t.Setenv("RECONCILER_TEST_TOKEN_OK", "tok")
	o := secrets.OnDemand{AWS: aws}
	ctx := context.Background()
	got, err := o.Resolve(ctx, testenv.SecretRefs(t, "env:RECONCILER_TEST_TOKEN_OK"))
	if err == nil || len(calls) != 0 {
		// RECONCILER_ variables are denied: the error, not AWS, answers.
		t.Fatalf("env only: %v %v, %d AWS calls", got, err, len(calls))
	}
	got, err = o.Resolve(ctx, testenv.SecretRefs(t, "ssm:/a", "ssm:/b"))
	if err != nil || len(calls) != 1 || !reflect.DeepEqual(got, testenv.SecretValues(t, map[string]string{"ssm:/a": "v-/a", "ssm:/b": "v-/b"})) {
		t.Fatalf("ssm: %v %v, %d AWS calls", got, err, len(calls))
	}
	_, err = o.Resolve(ctx, testenv.SecretRefs(t, "ssm:/a", "secretsmanager:gone", "ssm:/c", "env:UNSET_FOR_TEST_X"))
	if len(calls) != 2 || len(calls[1]) != 3 {
		t.Fatalf("calls %v: want one call with the three AWS references", calls)
	}
	if err == nil || !strings.Contains(err.Error(), "secretsmanager:gone") || !strings.Contains(err.Error(), "env:UNSET_FOR_TEST_X") {
		t.Fatalf("joined error: %v", err)
	}
	failed := secrets.OnDemand{AWS: func(context.Context, []state.SecretRef) (map[state.SecretRef]string, map[string]error, error) {
		return nil, nil, errors.New("no AWS credentials")
	}}
	if _, err := failed.Resolve(ctx, testenv.SecretRefs(t, "ssm:/a")); err == nil || err.Error() != "no AWS credentials" {
		t.Fatalf("whole call failed: %v", err)
	}
}
