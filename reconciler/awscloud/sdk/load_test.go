package sdk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/awscloud"
	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
)

// TestLoadWithoutCredentials: with a region in the env file and no
// credentials anywhere, Load fails with one line that says what it tried,
// what to set, and that diff --base needs no AWS; no SDK error text.
func TestLoadWithoutCredentials(t *testing.T) {
	testenv.BareAWS(t)
	_, err := sdk.Load(context.Background(), awscloud.Settings{Region: "us-east-1", File: "envs/dev.yaml"})
	if !errors.Is(err, awscloud.ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
	msg := err.Error()
	for _, want := range []string{"no AWS credentials", "tried AWS_ACCESS_KEY_ID", "EC2 instance role", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		"aws.profile in envs/dev.yaml", "`reconciler diff --base` previews without AWS"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "operation error") || strings.Contains(msg, "ec2imds") {
		t.Errorf("want one line of guidance, no SDK error:\n%s", msg)
	}
}

// TestLoadWithoutRegion: no region anywhere (and no metadata service) is
// one line naming aws.region in the env file.
func TestLoadWithoutRegion(t *testing.T) {
	testenv.BareAWS(t)
	_, err := sdk.Load(context.Background(), awscloud.Settings{File: "envs/dev.yaml"})
	if !errors.Is(err, awscloud.ErrNoRegion) {
		t.Fatalf("err = %v, want ErrNoRegion", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "set aws.region") || !strings.Contains(msg, "envs/dev.yaml") ||
		!strings.Contains(msg, "diff --base") || strings.Contains(msg, "\n") {
		t.Errorf("message:\n%s", msg)
	}
}

// TestLoadRegionSkipsMetadata: with the env file's region, the metadata
// service (here a loopback stand-in that counts requests) is never asked
// for a region, and the env file's region wins over AWS_REGION.
func TestLoadRegionSkipsMetadata(t *testing.T) {
	testenv.BareAWS(t)
	var calls atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "forbidden", http.StatusForbidden)
	}))
	t.Cleanup(imds.Close)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
	t.Setenv("AWS_REGION", "eu-west-1")

	cfg, err := sdk.Load(context.Background(), awscloud.Settings{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" {
		t.Errorf("region %q, want the env file's us-east-1", cfg.Region)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests to the metadata service; want none when a region is given", n)
	}

	// The stand-in does answer when no region is given: the check above
	// could see a request.
	t.Setenv("AWS_REGION", "")
	if _, err := sdk.Load(context.Background(), awscloud.Settings{}); err == nil {
		t.Error("loaded without a region")
	}
	if calls.Load() == 0 {
		t.Error("the metadata stand-in was never asked: the test cannot see a lookup")
	}
}
