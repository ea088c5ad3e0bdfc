package reconciler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/memhost"
)

// TestSnapshotTimeoutFromTheAPI: when the snapshot API gives up by itself
// before migrations.snapshot.timeout ends (the AWS helper stops a little
// before the deadline to say the last status it read), the deploy still
// names the setting, keeps the API's message and runs no migration.
func TestSnapshotTimeoutFromTheAPI(t *testing.T) {
	gc := goldenCase(t, "migrations-snapshot")
	d, o := gc.Desired, gc.Observed
	d.Migrations.SnapshotTimeout = 10 * time.Minute
	p, err := reconciler.Diff(d, o, reconciler.TestKey)
	if err != nil {
		t.Fatal(err)
	}
	h := memhost.New()
	h.Seed(d, o)
	h.Fault = func(c memhost.Call) error {
		if c.Op == "snapshot" {
			return fmt.Errorf(`RDS snapshot %s of %s not available within 9m58s (last status "creating"): %w`, c.Arg, c.Target, context.DeadlineExceeded)
		}
		return nil
	}
	_, err = h.Applier(memhost.NewClock(time.Unix(0, 0))).Apply(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "not available within 10m0s (migrations.snapshot.timeout)") ||
		!strings.Contains(err.Error(), `last status "creating"`) || !strings.Contains(err.Error(), "the migrations did not run") {
		t.Fatalf("apply = %v, want the setting named, the last status and no migration", err)
	}
	for _, c := range h.Calls() {
		if c.Op == "run-job" || c.Op == "start" {
			t.Errorf("%v after the failed snapshot", c)
		}
	}
}
