package metrics

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBinariesLinkNoClientLibrary: no binary of cmd/ (reconciler,
// nameproxy, and any added later) links a Prometheus client package or
// protobuf, whose package init cost every process megabytes of RSS; this
// package writes the metrics instead. Tests may use them (go list -deps
// without -test leaves test imports out).
func TestBinariesLinkNoClientLibrary(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the imports: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{end}}`,
		"../../cmd/...").Output()
	if err != nil {
		t.Fatalf("go list -deps ../../cmd/...: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/developer-mesh/reconciler/internal/metrics") {
		t.Fatalf("the binaries do not link internal/metrics; is the list right?\n%s", out)
	}
	for _, d := range deps {
		for _, bad := range []string{"github.com/prometheus/", "google.golang.org/protobuf", "github.com/golang/protobuf"} {
			if strings.HasPrefix(d, bad) {
				t.Errorf("a binary of cmd/ depends on %s", d)
			}
		}
	}
}
