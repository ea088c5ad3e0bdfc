package doclinks

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOperationsListsSSMParameters: every ssm: reference of the shipped
// environments (envs/*.yaml, secrets and notify URLs alike) has its
// `aws ssm put-parameter --name ...` line in docs/operations.md, and the
// doc creates no parameter that no environment reads.
func TestOperationsListsSSMParameters(t *testing.T) {
	root := repoRoot(t)
	envs, err := filepath.Glob(filepath.Join(root, "envs", "*.yaml"))
	if err != nil || len(envs) < 3 {
		t.Fatalf("shipped envs: %v, %v", envs, err)
	}
	refRe := regexp.MustCompile(`ssm:(/[A-Za-z0-9_./-]+)`)
	want := map[string]string{}
	for _, f := range envs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refRe.FindAllStringSubmatch(string(b), -1) {
			want[m[1]] = filepath.Base(f)
		}
	}
	if len(want) == 0 {
		t.Fatal("no ssm: reference in envs/*.yaml")
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	lineRe := regexp.MustCompile(`(?m)^aws ssm put-parameter --name (\S+) --type (String|SecureString) `)
	documented := map[string]bool{}
	for _, m := range lineRe.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for name, env := range want {
		if !documented[name] {
			t.Errorf("docs/operations.md has no `aws ssm put-parameter --name %s` line (used by envs/%s)", name, env)
		}
	}
	for name := range documented {
		if _, ok := want[name]; !ok && strings.HasPrefix(name, "/devops-mcp/") {
			t.Errorf("docs/operations.md creates %s, which no shipped env reads", name)
		}
	}
}
