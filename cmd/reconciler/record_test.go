package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/nginx"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/templates"
)

// TestApplyRecordsHistoryAndMetrics: apply writes the agent's history
// (trigger apply) and, with --metrics-file, the deploy's metrics: result,
// rollback, the requests nginx served during the bake and the p95 before
// and during the deploy; history --stats prints the rates.
func TestApplyRecordsHistoryAndMetrics(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bake := "    deploy:\n      bake: 2s\n"
	prom := filepath.Join(t.TempDir(), "reconciler-"+w.env+".prom")
	w.commit(spec{version: "v1", config: "a: 1\n", webExtra: bake}, "v1")
	w.mustRun(exitOK, "apply", "--metrics-file", prom)
	w.wantServing("v1")

	// Traffic before and during the next deploy: the p95 of both windows
	// and the bake's requests.
	l := startLoadMethod(t, w.port, 2, "GET")
	logPath := templates.LogPath(w.ngx.Dir, w.env, "web")
	waitFor(t, "requests in the access log before the deploy", 10*time.Second, func() bool {
		lat, err := nginx.ResponseTimes(logPath, time.Now().Add(-time.Minute), time.Now())
		return err == nil && lat.Requests > 20
	})
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webExtra: bake}, "v2")
	w.mustRun(exitOK, "apply", "--metrics-file", prom)
	l.end()
	metrics := readFile(t, prom)
	for _, want := range []string{
		`reconciler_apply_deployments_total{env="` + w.env + `",result="succeeded"} 2`,
		`reconciler_apply_last_deploy_success{env="` + w.env + `"} 1`,
		`reconciler_apply_last_deploy_rolled_back{env="` + w.env + `"} 0`,
		`reconciler_apply_last_deploy_p95_response_seconds{env="` + w.env + `",window="before"}`,
		`reconciler_apply_last_deploy_p95_response_seconds{env="` + w.env + `",window="after"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics file lacks %q:\n%s", want, metrics)
		}
	}
	if strings.Contains(metrics, `reconciler_apply_last_deploy_requests{env="`+w.env+`"} 0`) {
		t.Fatalf("the bake's requests were not counted:\n%s", metrics)
	}

	// A deploy that never turns healthy: failed, rolled back.
	w.commit(spec{image: "reconciler-test/app:v1", version: "v3", config: "a: 1\n", webExtra: bake, webEnv: "      HEALTH: fail\n"}, "v3 broken")
	w.mustRun(exitFailed, "apply", "--metrics-file", prom)
	metrics = readFile(t, prom)
	for _, want := range []string{
		`reconciler_apply_deployments_total{env="` + w.env + `",result="failed"} 1`,
		`reconciler_apply_rollbacks_total{env="` + w.env + `"} 1`,
		`reconciler_apply_last_deploy_success{env="` + w.env + `"} 0`,
		`reconciler_apply_last_deploy_rolled_back{env="` + w.env + `"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics file after the failed deploy lacks %q:\n%s", want, metrics)
		}
	}

	// In sync: not a deploy, not recorded.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webExtra: bake}, "back to v2")
	w.mustRun(exitOK, "apply")

	recs, _, err := history.Read(statedir.HistoryPath(w.stateDir, w.env))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Trigger+":"+r.Result)
	}
	if strings.Join(got, " ") != "apply:succeeded apply:succeeded apply:failed" {
		t.Fatalf("history %v", got)
	}
	if r := recs[1]; r.Requests == 0 || r.P95After == 0 || r.P95Before == 0 || len(r.Steps) == 0 || r.Commit == "" {
		t.Fatalf("second record %+v", r)
	}
	if r := recs[2]; !r.RolledBack || !strings.Contains(r.Error, "not healthy") {
		t.Fatalf("third record %+v", r)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"history", "--env", w.env, "--state-dir", w.stateDir, "--stats", "--since", "1h"}, &out, &errb); code != 0 {
		t.Fatalf("history --stats: exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{"3 deploy(s), 2 succeeded, 1 failed, 1 rolled back", "success rate    66.67%", "rollback rate   33.33%"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("history --stats lacks %q:\n%s", want, out.String())
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
