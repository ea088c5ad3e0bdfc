package reconciler

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// forbiddenPrefixes are import paths the core must not depend on: the
// Docker client, go-git, the AWS SDK, and every adapter package (the
// name proxy's HTTP server among them), which wrap those.
var forbiddenPrefixes = []string{
	"github.com/docker/",
	"github.com/moby/",
	"github.com/go-git/",
	"github.com/aws/",
	"github.com/developer-mesh/reconciler/reconciler/",
	"github.com/developer-mesh/reconciler/state/gitrepo",
	"net/http/httputil",
}

// forbidden returns the paths in deps that the core must not import.
func forbidden(deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, p := range forbiddenPrefixes {
			if strings.HasPrefix(d, p) {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

// goList returns `go list -deps pkg` (pkg relative to this directory).
func goList(t *testing.T, pkg string) []string {
	t.Helper()
	// go test puts its own GOROOT/bin first in PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the imports: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestForbidden: the check itself finds an adapter, a client library and
// the name proxy, and lets the standard library and the core's own
// packages through.
func TestForbidden(t *testing.T) {
	deps := []string{"fmt", "net/http", "github.com/developer-mesh/reconciler/state",
		"github.com/developer-mesh/reconciler/reconciler", "github.com/docker/docker/client",
		"github.com/developer-mesh/reconciler/reconciler/nameproxy", "github.com/go-git/go-git/v5", "github.com/aws/aws-sdk-go-v2/aws"}
	got := forbidden(deps)
	want := deps[4:]
	if !slices.Equal(got, want) {
		t.Fatalf("forbidden = %q, want %q", got, want)
	}
}

// TestCoreImports: the planner and executor depend on no Docker, go-git or
// AWS package and on no adapter (HTTP name proxy included): the import
// graph shows the architecture (STYLE.md, habit 1).
func TestCoreImports(t *testing.T) {
	if bad := forbidden(goList(t, "github.com/developer-mesh/reconciler/reconciler")); len(bad) > 0 {
		t.Fatalf("package reconciler depends on %q; put that code in an adapter behind an interface of ports.go", bad)
	}
}

// TestMemhostImports: the in-memory host depends on nothing the core does
// not depend on (the core, state, templates, the standard library, zap).
func TestMemhostImports(t *testing.T) {
	core := goList(t, "github.com/developer-mesh/reconciler/reconciler")
	allowed := map[string]bool{"github.com/developer-mesh/reconciler/reconciler": true}
	for _, d := range core {
		allowed[d] = true
	}
	for _, d := range goList(t, "github.com/developer-mesh/reconciler/reconciler/memhost") {
		if !allowed[d] && d != "github.com/developer-mesh/reconciler/reconciler/memhost" {
			t.Errorf("package memhost depends on %s, which the core does not", d)
		}
	}
}

// TestReconcilerBinaryWithoutAWSSDK: the reconciler binary links no AWS
// SDK package; the SDK's init, which costs every process memory, runs only
// in the helper reconciler-aws (cmd/reconciler-aws, package awscloud/sdk),
// started when an AWS call is needed.
func TestReconcilerBinaryWithoutAWSSDK(t *testing.T) {
	for _, d := range goList(t, "github.com/developer-mesh/reconciler/cmd/reconciler") {
		if strings.HasPrefix(d, "github.com/aws/") || d == "github.com/developer-mesh/reconciler/reconciler/awscloud/sdk" {
			t.Errorf("cmd/reconciler depends on %s; AWS SDK code belongs in reconciler/awscloud/sdk, run through reconciler-aws", d)
		}
	}
	found := false
	for _, d := range goList(t, "github.com/developer-mesh/reconciler/cmd/reconciler-aws") {
		found = found || strings.HasPrefix(d, "github.com/aws/aws-sdk-go-v2/")
	}
	if !found {
		t.Error("cmd/reconciler-aws links no AWS SDK package: the check above could not see one")
	}
}
