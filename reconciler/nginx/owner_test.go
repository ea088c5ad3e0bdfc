package nginx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestWriteRefusesFilesNotOurs: an operator's own file named like a
// service's, and another env's file whose name collides (env cc, service
// x-y and env cc-x, service y both make cc-x-y.conf), are refused with the
// file and its owner named; the file keeps its bytes and nginx is not
// reloaded.
func TestWriteRefusesFilesNotOurs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	listen := testenv.FreePort(t)

	own := []byte("# my own site\nserver { listen 127.0.0.1:1; }\n")
	path, content := f.site(t, "i14own", "api", 21900, 21901, listen)
	if err := os.WriteFile(path, own, 0o644); err != nil {
		t.Fatal(err)
	}
	err := f.edge.Write(ctx, path, content, nil)
	if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "operator's own file") {
		t.Fatalf("write over an operator's file: %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, own) {
		t.Fatalf("the operator's file changed:\n%s", b)
	}

	first, firstContent := f.site(t, "cc", "x-y", 21902, 21903, listen)
	if err := f.edge.Write(ctx, first, firstContent, nil); err != nil {
		t.Fatal(err)
	}
	second, secondContent := f.site(t, "cc-x", "y", 21904, 21905, listen)
	if second != first {
		t.Fatalf("want colliding names, got %s and %s", first, second)
	}
	reloads := f.reloads(t)
	err = f.edge.Write(ctx, second, secondContent, nil)
	if !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "belongs to env cc, service x-y") {
		t.Fatalf("write over another env's file: %v", err)
	}
	if b, _ := os.ReadFile(first); !bytes.Equal(b, firstContent) {
		t.Fatal("the first env's file changed")
	}
	if got := f.reloads(t); got != reloads {
		t.Fatalf("reloads %d → %d; want none for a refused write", reloads, got)
	}
}
