package agent

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// scrape returns the body and Content-Type of GET /metrics on a.
func scrape(t *testing.T, a *Agent) (string, string) {
	t.Helper()
	srv := httptest.NewServer(a.Handler(WebhookConfig{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, b)
	}
	return string(b), resp.Header.Get("Content-Type")
}

// runtimeSeries matches the lines of the process and Go runtime metrics,
// whose values change from one scrape to the next.
var runtimeSeries = regexp.MustCompile(`(?m)^(# (HELP|TYPE) )?(process|go)_.*\n`)

// TestMetricsGolden: every family of the agent's /metrics (the resource
// collector's included) keeps its name, type, HELP text and labels, in
// the text format 0.0.4, byte for byte (testdata/metrics.golden; dashboards
// and alert rules depend on them), and promtool accepts the whole page.
func TestMetricsGolden(t *testing.T) {
	m := NewMetrics()
	m.init("test")
	read := func(context.Context, string) ([]state.Resources, error) {
		return []state.Resources{
			{Name: "test-web-blue", Service: "web", Color: "blue", CPUSeconds: 12.25, MemoryBytes: 10 << 20,
				MemoryLimitBytes: 64 << 20, RestartCount: 2, Running: true, Healthy: true},
			{Name: "test-api", Service: "api", CPUSeconds: 3, MemoryLimitBytes: 1 << 30, Running: false},
		}, nil
	}
	m.Registry.MustRegister(NewResourceCollector("test", read, time.Hour, zap.NewNop()))
	m.Deployments.WithLabelValues("test", resultSucceeded).Add(3)
	m.Deployments.WithLabelValues("test", resultFailed).Inc()
	for _, d := range []float64{0.2, 3, 3, 45, 1000} {
		m.DeploymentDuration.WithLabelValues("test").Observe(d)
	}
	m.GitFetchDuration.WithLabelValues("test").Observe(0.07)
	m.GitFetchDuration.WithLabelValues("other").Observe(12)
	m.AppliedCommit.WithLabelValues("test", "0123abc").Set(1)
	m.AppliedCommit.WithLabelValues("test", "old").Set(1)
	m.AppliedCommit.DeleteLabelValues("test", "old")
	m.LastSuccessfulFetch.WithLabelValues("test").Set(1795953690.5)
	m.WebhookRequests.WithLabelValues("unauthorized").Inc()
	m.WebhookRequests.WithLabelValues("accepted").Add(2)
	m.DriftDetected.WithLabelValues("test").Set(2)
	m.Ready.WithLabelValues("test").Set(1)

	body, ctype := scrape(t, New(Config{Env: "test", Metrics: m}))
	if want := "text/plain; version=0.0.4; charset=utf-8"; !strings.HasPrefix(ctype, want) {
		t.Errorf("Content-Type %q, want %q", ctype, want)
	}
	for _, fam := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(body, "\n"+fam+" ") {
			t.Errorf("/metrics lacks %s", fam)
		}
	}
	own := runtimeSeries.ReplaceAllString(body, "")
	// process_ and go_ series are left out of the golden file: their
	// values change from run to run.
	testenv.Golden(t, "testdata/metrics.golden", []byte(own), *update)
	testenv.PromtoolCheckMetrics(t, body)
}
