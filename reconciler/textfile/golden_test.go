package textfile_test

import (
	"flag"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/textfile"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestRenderGolden: the file's families keep their names, types, HELP
// texts, labels and order byte for byte (testdata/render.golden):
// dashboards and alert rules depend on them.
func TestRenderGolden(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	last := history.Record{Env: "prod", Trigger: history.TriggerApply, Result: history.Succeeded, Start: start,
		End: start.Add(1500 * time.Millisecond), Requests: 12, P95Before: 40 * time.Millisecond}
	got := textfile.Render("prod", last, []history.Record{last})
	testenv.Golden(t, "testdata/render.golden", got, *update)
}
