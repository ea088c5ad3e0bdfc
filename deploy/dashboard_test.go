package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestGrafanaDashboard: deploy/grafana-dashboard.json is valid JSON with
// panels for what issue 20 asks (deploys, duration, rollbacks, the watch's
// error rate, container CPU, memory and restarts, crash loops), and every
// reconciler_* name in a panel's expression is a metric the agent exports
// (a histogram's _bucket, _sum and _count of an exported one).
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels: %+v", dash)
	}
	known := exported(t)
	var rules strings.Builder // every expression as a recording rule, for promtool
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	metric := regexp.MustCompile(`\breconciler_[a-z0-9_]+`)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced expression %s", p.Title, tg.Expr)
			}
			// Grafana's variable, as a regexp matcher, is what Prometheus
			// gets; its quoting makes the expression a YAML string.
			q, _ := json.Marshal(strings.ReplaceAll(tg.Expr, "$env", ".*"))
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d\n        expr: %s\n", p.ID, q)
			names := metric.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: expression names no reconciler metric: %s", p.Title, tg.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && known[b] {
						base = b
					}
				}
				if !known[base] {
					t.Errorf("panel %q uses %s, which the agent does not export", p.Title, n)
				}
				used[base] = true
			}
		}
	}
	for _, want := range []string{"reconciler_deployments_total", "reconciler_deployment_duration_seconds", "reconciler_rollbacks_total",
		"reconciler_deploy_request_errors_total", "reconciler_deploy_requests_total", "reconciler_container_cpu_seconds_total",
		"reconciler_container_memory_bytes", "reconciler_container_restarts_total", "reconciler_crash_looping_containers"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}

	// promtool parses every expression as PromQL.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.SkipOrFail(t, "promtool not installed (Debian package prometheus; scripts/deps.sh installs it): %v", err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (the dashboard's expressions): %v\n%s", err, out)
	}
}
