// Package workflows checks .github/workflows with actionlint, the version
// pinned by the tool directive in go.mod, so the test and CI agree.
package workflows

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// repoRoot is the directory of go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		testenv.SkipOrFail(t, "go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func actionlint(t *testing.T, dir string, files ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "actionlint", "-no-color"}, files...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestActionlint(t *testing.T) {
	if testing.Short() {
		t.Skip("builds actionlint on first use")
	}
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows found under %s: %v", root, err)
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		// Without it actionlint passes run: scripts unchecked.
		testenv.SkipOrFail(t, "shellcheck not installed (scripts/deps.sh installs it): run: scripts would go unchecked")
	}
	if out, err := actionlint(t, root); err != nil {
		t.Fatalf("actionlint: %v\n%s", err, out)
	}

	// The check can fail: a workflow with an unknown key and a bad
	// expression is rejected.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope.nope }}\n        with_typo: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := actionlint(t, root, bad); err == nil {
		t.Fatalf("actionlint accepted a broken workflow:\n%s", out)
	}
}
