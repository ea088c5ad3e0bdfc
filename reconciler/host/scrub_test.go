package host

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// fixedSecrets resolves every reference to one value.
type fixedSecrets string

func (f fixedSecrets) Resolve(_ context.Context, refs []state.SecretRef) (map[state.SecretRef]string, error) {
	out := map[state.SecretRef]string{}
	for _, r := range refs {
		out[r] = string(f)
	}
	return out, nil
}

// TestDeployScrubsSecrets: the engine refuses a container and quotes its
// secret value back (as Docker does); the value reaches none of the
// sync's error (which the agent keeps in its history and /status), its
// log lines or its notifications.
func TestDeployScrubsSecrets(t *testing.T) {
	t.Parallel()
	const secret = "S3CRET-value-1234"
	mh := memhost.New()
	mh.Fault = func(c memhost.Call) error {
		if c.Op == "start" {
			return fmt.Errorf("Error response from daemon: invalid environment variable: TOKEN=%s", secret)
		}
		return nil
	}
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"envs/t14.yaml": {Data: []byte(`environment: t14
nginx: {confDir: /conf, test: "true", reload: "true", logDir: /logs}
services:
  web:
    image: web:v1
    containerPort: 8080
    listen: "127.0.0.1:18080"
    secrets:
      TOKEN: env:T14_TOKEN
`)}}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	ev := &events{}
	s := &Syncer{
		Env: "t14", Mirror: oneCommit{Source{FS: fsys, Hash: "c0ffee0000000000000000000000000000000014"}}, Dir: dir,
		LockTimeout: time.Second,
		Open: func(context.Context, *state.Env) (*Host, error) {
			return &Host{Runtime: memRuntime{mh.Runtime()}, Edge: mh.Edge(), Dir: dir, Key: []byte("k"), Secrets: fixedSecrets(secret),
				Names: mh, Markers: mh, Prober: mh, Log: log, Out: io.Discard,
				Clock: memhost.NewClock(time.Unix(0, 0))}, nil
		},
		Down:     func(context.Context) bool { return false },
		Notifier: func([]state.Notify) Notifier { return ev },
		Log:      log,
	}
	_, err = s.Sync(context.Background(), agent.Revision{Hash: "c0ffee0000000000000000000000000000000014"}, agent.Deploy)
	if err == nil {
		t.Fatal("the deploy passed; want the engine's refusal")
	}
	if !strings.Contains(err.Error(), "invalid environment variable: TOKEN="+state.Scrubbed) {
		t.Errorf("error %q: want the engine's message, scrubbed", err)
	}
	var all []string
	all = append(all, err.Error())
	for _, e := range logs.All() {
		all = append(all, e.Message)
		for k, v := range e.ContextMap() {
			all = append(all, fmt.Sprintf("%s=%v", k, v))
		}
	}
	texts := ev.texts()
	all = append(all, texts...)
	if len(texts) == 0 {
		t.Fatal("no event was sent")
	}
	for _, text := range all {
		if strings.Contains(text, secret) {
			t.Errorf("secret in %q", text)
		}
	}
}
