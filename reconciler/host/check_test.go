package host

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// passingChecks passes the host and names the plan it was given.
type passingChecks struct{}

func (passingChecks) Host(context.Context) preflight.Report {
	return preflight.Report{{Name: "engine", Detail: "ok"}}
}

func (passingChecks) Plan(_ context.Context, p *reconciler.Plan) preflight.Report {
	return preflight.Report{{Name: "images", Detail: p.Env}}
}

// TestCheck: reconciler check's sequence. A failed host check stops there;
// otherwise the plan (and with it the secrets) and the plan's checks are
// reported, and nothing on the host changes.
func TestCheck(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{Runtime: memRuntime{mh.Runtime()}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"),
		Names: mh, Markers: mh, Prober: mh, Secrets: fixedSecrets("v"), Log: zaptest.NewLogger(t), Out: io.Discard,
		Clock: memhost.NewClock(time.Unix(0, 0))}
	fsys := fstest.MapFS{"envs/t3.yaml": {Data: []byte(`environment: t3
nginx: {confDir: /conf, test: "true", reload: "true"}
services:
  web:
    image: web:v1
    containerPort: 8080
    secrets: {A: "env:RECONCILER_TEST_A"}
`)}}
	e, err := state.Load(fsys, "t3")
	if err != nil {
		t.Fatal(err)
	}
	src := Source{FS: fsys, Hash: "c0ffee0000000000000000000000000000000003"}

	if r := h.Check(context.Background(), src, e, failingChecks{}); r.Err() == nil || len(r) != 1 {
		t.Fatalf("a failed host check: %v", r)
	}
	r := h.Check(context.Background(), src, e, passingChecks{})
	if r.Err() != nil || len(r) != 3 || r[1].Name != "secrets and plan" || !strings.Contains(r[1].Detail, "1 secret(s) resolved") || r[2].Detail != "t3" {
		t.Fatalf("report: %v", r)
	}
	if len(mh.Calls()) == 0 {
		t.Fatal("the plan did not observe the host")
	}
	for _, c := range mh.Calls() {
		if !strings.HasPrefix(c.Op, "observe") {
			t.Fatalf("check called %s on the host", c)
		}
	}
}
