package nginx

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

// TestPin: Pin writes the site's drain marker naming the draining color,
// "" removes it (twice is fine), a color that is neither is refused, and
// Remove of a site that is gone clears a marker left behind.
func TestPin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := New("true", "true", nil)
	ctx := context.Background()
	marker := filepath.Join(dir, state.DrainMarkerFile("i19", "mcp"))
	if err := e.Pin(ctx, dir, "i19", "mcp", state.Blue); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(marker); err != nil || !strings.Contains(string(b), "go to blue") {
		t.Fatalf("marker %q, %v: want one naming blue", b, err)
	}
	for range 2 {
		if err := e.Pin(ctx, dir, "i19", "mcp", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Fatalf("marker still there after unpin: %v", err)
		}
	}
	if err := e.Pin(ctx, dir, "i19", "mcp", "red"); err == nil {
		t.Error("Pin(red) succeeded")
	}
	if err := e.Pin(ctx, dir, "i19", "mcp", state.Green); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, dir, "i19", "mcp"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("Remove left the drain marker: %v", err)
	}
}
