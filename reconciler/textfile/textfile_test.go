package textfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/textfile"
)

// TestWrite: the file holds the last deploy's gauges and the counters of
// the apply records of the history, replaces the previous file whole,
// is readable by another user, and passes promtool check metrics.
func TestWrite(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	recs := []history.Record{
		{Env: "prod", Trigger: history.TriggerApply, Result: history.Succeeded, Start: start.Add(-2 * time.Hour), End: start.Add(-2 * time.Hour)},
		{Env: "prod", Trigger: "poll", Result: history.Failed, RolledBack: true}, // the agent's: not counted here
		{Env: "prod", Trigger: history.TriggerApply, Result: history.Failed, RolledBack: true, Start: start, End: start.Add(90 * time.Second),
			Requests: 200, Errors: 30, P95Before: 40 * time.Millisecond, P95After: 1250 * time.Millisecond},
	}
	path := filepath.Join(t.TempDir(), "reconciler-prod.prom")
	if err := os.WriteFile(path, []byte("stale content that must go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := textfile.Write(path, "prod", recs[2], recs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`reconciler_apply_deployments_total{env="prod",result="succeeded"} 1`,
		`reconciler_apply_deployments_total{env="prod",result="failed"} 1`,
		`reconciler_apply_deployments_total{env="prod",result="refused"} 0`,
		`reconciler_apply_rollbacks_total{env="prod"} 1`,
		`reconciler_apply_last_deploy_duration_seconds{env="prod"} 90`,
		`reconciler_apply_last_deploy_success{env="prod"} 0`,
		`reconciler_apply_last_deploy_rolled_back{env="prod"} 1`,
		`reconciler_apply_last_deploy_requests{env="prod"} 200`,
		`reconciler_apply_last_deploy_request_errors{env="prod"} 30`,
		`reconciler_apply_last_deploy_p95_response_seconds{env="prod",window="before"} 0.04`,
		`reconciler_apply_last_deploy_p95_response_seconds{env="prod",window="after"} 1.25`,
		`reconciler_apply_last_deploy_timestamp_seconds{env="prod"} 1.79595369e+09`,
		"# TYPE reconciler_apply_deployments_total counter",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("metrics file lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "stale") {
		t.Errorf("the old content is still there")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", fi.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temp files left beside the metrics file: %v", entries)
	}

	testenv.PromtoolCheckMetrics(t, got)
}
