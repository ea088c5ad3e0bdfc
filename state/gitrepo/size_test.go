package gitrepo_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/state/gitrepo"
)

// TestLargeBlobNotInflated: a 64 MB file named by an env file is refused
// by its size, read from the object store's header: loading the env
// allocates a small fraction of the blob (before, go-git inflated it whole
// first).
func TestLargeBlobNotInflated(t *testing.T) {
	t.Parallel()
	r := testenv.NewRepo(t)
	r.Write("big.bin", strings.Repeat("\x00", 64<<20))
	r.Write("envs/lb14.yaml", "environment: lb14\nservices:\n  api:\n    image: ghcr.io/acme/api:v1\n    files:\n      - source: big.bin\n        target: /big\n")
	r.Commit("big")
	c, err := gitrepo.Open(context.Background(), r.Dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = state.Load(c.FS, "lb14")
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "want at most") {
		t.Fatalf("Load: %v; want the size limit", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Fatalf("Load allocated %d MB to refuse a 64 MB blob", got>>20)
	}
}
