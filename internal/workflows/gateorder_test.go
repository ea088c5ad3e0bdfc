package workflows

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// flow is the part of a workflow the gate-order test reads.
type flow struct {
	Jobs map[string]struct {
		Needs       any            `yaml:"needs"`
		If          string         `yaml:"if"`
		Uses        string         `yaml:"uses"`
		With        map[string]any `yaml:"with"`
		Environment any            `yaml:"environment"`
		Steps       []struct {
			Name string            `yaml:"name"`
			If   string            `yaml:"if"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func needsOf(v any) []string {
	switch n := v.(type) {
	case string:
		return []string{n}
	case []any:
		var out []string
		for _, x := range n {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func readFlow(t *testing.T, name string) (flow, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var f flow
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f, string(b)
}

// TestDeployGateOrder checks the order the approval gate depends on: in
// deployment.yml the checks (main, CI green, staging first) and the image
// scan run before the approved job, and that job moves the deploy ref
// before it asks the host anything; only it moves deploy refs; and every
// deploy of staging or prod, whatever its trigger, goes through it, prod
// only after staging.
func TestDeployGateOrder(t *testing.T) {
	d, _ := readFlow(t, "deployment.yml")
	gate, scan, deploy := d.Jobs["gate"], d.Jobs["scan"], d.Jobs["deploy"]
	var gateRuns string
	for _, s := range gate.Steps {
		gateRuns += s.Run + "\n"
	}
	for _, want := range []string{"scripts/deploy-ref.sh check", "scripts/checks-green.sh", "reconciler validate"} {
		if !strings.Contains(gateRuns, want) {
			t.Errorf("deployment.yml: the gate job does not run %s", want)
		}
	}
	if gate.Environment != nil {
		t.Error("deployment.yml: the gate job must run before the approval (no environment)")
	}
	if !slices.Equal(needsOf(scan.Needs), []string{"gate"}) {
		t.Errorf("deployment.yml: scan needs %v, want [gate]", scan.Needs)
	}
	var scanned bool
	for _, s := range scan.Steps {
		if strings.HasPrefix(s.Uses, "aquasecurity/trivy-action@") {
			scanned = s.With["exit-code"] == "1" && s.With["severity"] != "" && s.With["image-ref"] != ""
		}
	}
	if !scanned {
		t.Error("deployment.yml: scan has no trivy-action step with image-ref, severity and exit-code 1")
	}
	if n := needsOf(deploy.Needs); !slices.Contains(n, "gate") || !slices.Contains(n, "scan") {
		t.Errorf("deployment.yml: deploy needs %v, want gate and scan", n)
	}
	if deploy.Environment == nil {
		t.Error("deployment.yml: the deploy job has no environment: nothing to approve")
	}
	moved := -1
	for i, s := range deploy.Steps {
		if strings.Contains(s.Run, "scripts/deploy-ref.sh move") {
			moved = i
			if s.If != "" {
				t.Errorf("deployment.yml: the ref move is conditional (%s)", s.If)
			}
		}
		touchesHost := strings.Contains(s.If, "DEPLOY_MODE") || strings.Contains(s.Run, "reconciler apply")
		if touchesHost && (moved < 0 || moved > i) {
			t.Errorf("deployment.yml: step %q asks the host before the deploy ref moved", s.Name)
		}
	}
	if moved < 0 {
		t.Error("deployment.yml: the deploy job never moves the deploy ref")
	}

	files, err := filepath.Glob(filepath.Join(repoRoot(t), ".github", "workflows", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		f, text := readFlow(t, name)
		if name != "deployment.yml" && (strings.Contains(text, "deploy-ref.sh move") || strings.Contains(text, "refs/heads/deploy/")) {
			t.Errorf("%s moves a deploy ref: only deployment.yml's approved job may", name)
		}
		for id, j := range f.Jobs {
			env, _ := j.With["environment"].(string)
			if env != "staging" && env != "prod" {
				continue
			}
			if j.Uses != "./.github/workflows/deployment.yml" {
				t.Errorf("%s: job %s deploys %s without deployment.yml", name, id, env)
			}
			if env != "prod" {
				continue
			}
			var staged bool
			for _, n := range needsOf(j.Needs) {
				if e, _ := f.Jobs[n].With["environment"].(string); e == "staging" {
					staged = true
				}
			}
			if !staged {
				t.Errorf("%s: job %s deploys prod without needing a staging deploy of the same commit", name, id)
			}
		}
	}
	// Every trigger of deploy-production (push, tag, dispatch) runs both jobs.
	p, _ := readFlow(t, "deploy-production.yml")
	if p.Jobs["prod"].With["ref"] != p.Jobs["staging"].With["ref"] {
		t.Errorf("deploy-production.yml: staging deploys %v, prod %v: want the same commit", p.Jobs["staging"].With["ref"], p.Jobs["prod"].With["ref"])
	}
}
