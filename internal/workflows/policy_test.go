package workflows

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// workflow is the part of a workflow file the policy reads.
type workflow struct {
	Permissions any            `yaml:"permissions"`
	Jobs        map[string]job `yaml:"jobs"`
}

type job struct {
	Uses           string         `yaml:"uses"`
	If             string         `yaml:"if"`
	Permissions    any            `yaml:"permissions"`
	TimeoutMinutes any            `yaml:"timeout-minutes"`
	Secrets        any            `yaml:"secrets"`
	Steps          []step         `yaml:"steps"`
	Extra          map[string]any `yaml:",inline"`
}

type step struct {
	If string `yaml:"if"`
}

// usesLine is a "uses:" line: the reference, then an optional comment.
var usesLine = regexp.MustCompile(`^\s*(?:-\s*)?uses:\s*['"]?([^\s'"#]+)['"]?\s*(?:#\s*(\S+))?`)

// pinned is an action pinned by a full commit SHA.
var pinned = regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40}$`)

// policyProblems returns what breaks the workflows' least-privilege rules
// in one file, sorted: write permissions (and id-token) only at job level,
// a timeout on every job that runs steps, no "secrets: inherit",
// !cancelled() instead of always(), and every action outside the
// repository pinned by a full commit SHA with its version in a comment.
func policyProblems(name string, b []byte) []string {
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		m := usesLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(m[1], "./") {
			continue
		}
		if !pinned.MatchString(m[1]) || !strings.HasPrefix(m[2], "v") {
			out = append(out, fmt.Sprintf("%s:%d: action %s is not pinned by a full commit SHA with its version in a comment (# vX.Y.Z)", name, i+1, m[1]))
		}
	}
	if perms, ok := w.Permissions.(map[string]any); ok {
		for k, v := range perms {
			if v == "write" {
				out = append(out, fmt.Sprintf("%s: top-level permission %s: write (grant it to the job that needs it)", name, k))
			}
		}
	} else if w.Permissions != nil {
		out = append(out, fmt.Sprintf("%s: top-level permissions %v: list them", name, w.Permissions))
	} else {
		out = append(out, fmt.Sprintf("%s: no top-level permissions (the default token can write)", name))
	}
	for id, j := range w.Jobs {
		if j.Uses == "" && j.TimeoutMinutes == nil {
			out = append(out, fmt.Sprintf("%s: job %s has no timeout-minutes", name, id))
		}
		if j.Secrets == "inherit" {
			out = append(out, fmt.Sprintf("%s: job %s passes secrets: inherit", name, id))
		}
		conds := []string{j.If}
		for _, s := range j.Steps {
			conds = append(conds, s.If)
		}
		for _, c := range conds {
			if strings.Contains(c, "always()") {
				out = append(out, fmt.Sprintf("%s: job %s: always() also runs a cancelled run; use !cancelled()", name, id))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestWorkflowPolicy checks every workflow against policyProblems, and that
// the check finds each kind of problem.
func TestWorkflowPolicy(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range policyProblems(filepath.Base(f), b) {
			t.Error(p)
		}
	}

	bad := `permissions:
  contents: write
  id-token: write
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - if: always()
        run: "true"
      - uses: actions/checkout@v4
  b:
    uses: ./.github/workflows/x.yml
    secrets: inherit
`
	got := strings.Join(policyProblems("bad.yml", []byte(bad)), "\n")
	for _, want := range []string{"top-level permission contents: write", "top-level permission id-token: write",
		"job a has no timeout-minutes", "job b passes secrets: inherit", "job a: always()",
		"bad.yml:10: action actions/checkout@v4 is not pinned"} {
		if !strings.Contains(got, want) {
			t.Errorf("policy missed %q in a bad workflow; got:\n%s", want, got)
		}
	}
}
