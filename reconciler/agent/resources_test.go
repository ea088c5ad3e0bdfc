package agent

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/metrics"
	"github.com/developer-mesh/reconciler/state"
)

// TestResourceCollectorOncePerInterval: scrapes within one interval share
// one reading of the engine.
func TestResourceCollectorOncePerInterval(t *testing.T) {
	reads := 0
	read := func(context.Context, string) ([]state.Resources, error) {
		reads++
		return []state.Resources{{Name: "p-web-blue", Service: "web", Color: "blue", CPUSeconds: 1.5,
			MemoryBytes: 10 << 20, MemoryLimitBytes: 64 << 20, RestartCount: 2, Running: true, Healthy: true}}, nil
	}
	c := NewResourceCollector("p", read, time.Hour, zap.NewNop())
	reg := metrics.NewRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(reg)
	defer srv.Close()
	want := `
# HELP reconciler_container_restarts_total Times the engine restarted the container (restart policy).
# TYPE reconciler_container_restarts_total counter
reconciler_container_restarts_total{color="blue",env="p",service="web"} 2
# HELP reconciler_container_memory_bytes Memory the container uses, inactive page cache left out (as docker stats shows it).
# TYPE reconciler_container_memory_bytes gauge
reconciler_container_memory_bytes{color="blue",env="p",service="web"} 1.048576e+07
`
	for i := 0; i < 3; i++ {
		if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want), "reconciler_container_restarts_total", "reconciler_container_memory_bytes"); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Fatalf("engine read %d times for 3 scrapes within the interval, want 1", reads)
	}
}
