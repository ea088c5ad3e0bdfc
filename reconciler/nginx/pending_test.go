package nginx

import (
	"context"
	"os"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestWriteAfterInterruptedReload: a Write killed between the write and the
// reload leaves the pending file; Observe reports the site as Unloaded and
// the next Write of the same bytes tests and reloads instead of doing
// nothing.
func TestWriteAfterInterruptedReload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	path, content := f.site(t, "prod", "api", blue.port, green.port, testenv.FreePort(t))
	if err := f.edge.Write(ctx, path, content, nil); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := os.Stat(pendingPath(path)); !os.IsNotExist(err) {
		t.Fatalf("pending file after a complete Write: %v", err)
	}
	sites, err := f.edge.Observe(ctx, "prod", f.n.ConfDir)
	if err != nil || len(sites) != 1 || sites[0].Unloaded {
		t.Fatalf("Observe = %+v, %v; want one loaded site", sites, err)
	}

	// What a SIGKILL after the rename and before the reload leaves behind.
	if err := os.WriteFile(pendingPath(path), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sites, err = f.edge.Observe(ctx, "prod", f.n.ConfDir)
	if err != nil || len(sites) != 1 || !sites[0].Unloaded {
		t.Fatalf("Observe = %+v, %v; want the site Unloaded", sites, err)
	}
	reloads := f.reloads(t)
	if err := f.edge.Write(ctx, path, content, nil); err != nil {
		t.Fatalf("Write after the interruption: %v", err)
	}
	if got := f.reloads(t); got != reloads+1 {
		t.Fatalf("reloads = %d, want %d: same bytes but never loaded", got, reloads+1)
	}
	if _, err := os.Stat(pendingPath(path)); !os.IsNotExist(err) {
		t.Fatalf("pending file after the reload: %v", err)
	}
	assertNoTempFiles(t, f.n.ConfDir)

	// Remove takes the pending file away with the site.
	if err := os.WriteFile(pendingPath(path), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.edge.Remove(ctx, f.n.ConfDir, "prod", "api"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(pendingPath(path)); !os.IsNotExist(err) {
		t.Fatalf("pending file after Remove: %v", err)
	}
}
