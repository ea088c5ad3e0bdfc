package host

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// memSync syncs env, whose env file is yaml, onto mh with a state dir of
// its own, and returns the sync's error.
func memSync(t *testing.T, mh *memhost.Host, env, yaml string) error {
	t.Helper()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hash := "c0ffee00000000000000000000000000000000" + "14"
	s := &Syncer{
		Env: env, Mirror: oneCommit{Source{FS: fstest.MapFS{"envs/" + env + ".yaml": {Data: []byte(yaml)}}, Hash: hash}}, Dir: dir,
		LockTimeout: time.Second,
		Open: func(context.Context, *state.Env) (*Host, error) {
			return &Host{Runtime: memRuntime{mh.Runtime()}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"),
				Names: mh, Markers: mh, Prober: mh, Log: zaptest.NewLogger(t), Out: io.Discard,
				Clock: memhost.NewClock(time.Unix(0, 0))}, nil
		},
		Down:     func(context.Context) bool { return false },
		Notifier: func([]state.Notify) Notifier { return &events{} },
		Log:      zaptest.NewLogger(t),
	}
	_, err = s.Sync(context.Background(), agent.Revision{Hash: hash}, agent.Deploy)
	return err
}

// siteEnv is an env file with one service with a listen address.
func siteEnv(env, service string) string {
	return `environment: ` + env + `
nginx: {confDir: /conf, test: "true", reload: "true", logDir: /logs}
services:
  ` + service + `:
    image: web:v1
    containerPort: 8080
    listen: "127.0.0.1:18080"
`
}

// changed lists the calls of mh that change the host.
func changed(mh *memhost.Host) []string {
	var out []string
	for _, c := range mh.Calls() {
		if c.Op != "pull" && !strings.HasPrefix(c.Op, "observe") {
			out = append(out, c.String())
		}
	}
	return out
}

// TestSyncRefusesOperatorFile: an operator's own file named like a
// service's (<env>-<service>.conf) stops the deploy before any change,
// naming the file; the file is untouched.
func TestSyncRefusesOperatorFile(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	own := []byte("# the operator's own site\n")
	mh.Seed(&state.Desired{Env: "other"}, &state.Observed{Sites: []state.Site{{Service: "x", Path: "/conf/i14op-api.conf", Content: own}}})
	err := memSync(t, mh, "i14op", siteEnv("i14op", "api"))
	if err == nil || !strings.Contains(err.Error(), "/conf/i14op-api.conf exists and has no reconciler header") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("sync: %v; want a refusal naming the file", err)
	}
	if got := changed(mh); len(got) != 0 {
		t.Errorf("calls that change the host: %v", got)
	}
	if b, _ := mh.File("/conf/i14op-api.conf"); string(b) != string(own) {
		t.Errorf("the operator's file changed: %q", b)
	}
}

// TestSyncRefusesCollidingEnv: env cc with service x-y and env cc-x with
// service y share container, proxy and file names; the second is refused
// before any change, naming the first as the owner.
func TestSyncRefusesCollidingEnv(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	if err := memSync(t, mh, "cc", siteEnv("cc", "x-y")); err != nil {
		t.Fatal(err)
	}
	file, _ := mh.File("/conf/cc-x-y.conf")
	before := len(changed(mh))
	err := memSync(t, mh, "cc-x", siteEnv("cc-x", "y"))
	if err == nil || !strings.Contains(err.Error(), "belongs to env cc, service x-y") {
		t.Fatalf("sync of cc-x: %v; want a refusal naming env cc, service x-y", err)
	}
	if got := changed(mh)[before:]; len(got) != 0 {
		t.Errorf("calls that change the host: %v", got)
	}
	if b, _ := mh.File("/conf/cc-x-y.conf"); string(b) != string(file) {
		t.Error("env cc's nginx file changed")
	}
}

// TestFirstDeployUndoRemovesItsFile: a new service's deploy that fails
// before traffic moved leaves no nginx file behind.
func TestFirstDeployUndoRemovesItsFile(t *testing.T) {
	t.Parallel()
	mh := memhost.New()
	mh.Fault = func(c memhost.Call) error {
		if c.Op == "switch" {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	if err := memSync(t, mh, "i14new", siteEnv("i14new", "api")); err == nil {
		t.Fatal("the deploy passed")
	}
	if b, ok := mh.File("/conf/i14new-api.conf"); ok {
		t.Fatalf("the new service's nginx file stayed:\n%s", b)
	}
	if _, ok := mh.Container("i14new-api-blue"); ok {
		t.Fatal("the new container stayed")
	}
}
