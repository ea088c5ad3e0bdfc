package main

import (
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestRegionsExtendsCLI: validate and promote on region envs that extend a
// base file, read from a real git commit.
func TestRegionsExtendsCLI(t *testing.T) {
	r := testenv.NewRepo(t)
	r.Write("envs/prod-base.yaml", "services:\n  api:\n    image: ghcr.io/acme/api:v1\n    containerPort: 8080\n    memory: 256m\n")
	r.Write("envs/prod-us-east-1.yaml", "extends: prod-base.yaml\nenvironment: prod-us-east-1\nservices:\n  api:\n    image: ghcr.io/acme/api:v3\n")
	r.Write("envs/prod-eu-west-1.yaml", "extends: prod-base.yaml\nenvironment: prod-eu-west-1\nservices:\n  api:\n    image: ghcr.io/acme/api:v2 # pinned\n")
	r.Commit("envs")

	code, out, errOut := runCLI(t, "validate", "--repo", r.Dir, "--env", "prod-eu-west-1")
	if code != 0 || !strings.Contains(out, "valid (1 services)") {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "promote", "--repo", r.Dir, "--author", "P <p@example.com>", "--from", "prod-us-east-1", "--to", "prod-eu-west-1")
	if code != 0 {
		t.Fatalf("promote: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "-    image: ghcr.io/acme/api:v2 # pinned\n+    image: ghcr.io/acme/api:v3 # pinned") {
		t.Errorf("promote output:\n%s", out)
	}

	// A change of the base only is a change of every region, in the preview.
	before := r.Git("rev-parse", "HEAD")
	r.Write("envs/prod-base.yaml", "services:\n  api:\n    image: ghcr.io/acme/api:v1\n    containerPort: 8080\n    memory: 512m\n")
	r.Commit("envs")
	code, out, errOut = runCLI(t, "diff", "--repo", r.Dir, "--env", "prod-us-east-1", "--base", before)
	if code != 2 || !strings.Contains(out, "memory") {
		t.Errorf("diff --base of a base file change: exit %d\n%s%s", code, out, errOut)
	}

	// A mistake in the base names the base's line, for every region.
	r.Write("envs/prod-base.yaml", "services:\n  api:\n    image: ghcr.io/acme/api:v1\n    containerPort: 8080\n    memory: lots\n")
	r.Commit("envs")
	for _, env := range []string{"prod-us-east-1", "prod-eu-west-1"} {
		code, out, errOut = runCLI(t, "validate", "--repo", r.Dir, "--env", env)
		if code == 0 || !strings.Contains(out+errOut, "envs/prod-base.yaml:5: services.api.memory:") {
			t.Errorf("validate %s with a bad base: exit %d\n%s%s", env, code, out, errOut)
		}
	}
}

// TestRecordSetOfAnotherEnvCLI: validate reads the other env files of the
// commit's git tree (not only a test's in-memory files): a record set that
// another env declares too is refused, naming that env's file.
func TestRecordSetOfAnotherEnvCLI(t *testing.T) {
	r := testenv.NewRepo(t)
	env := func(name string) string {
		return "environment: " + name + "\naws: {region: us-east-1}\nroute53:\n  records:\n" +
			"    - {hostedZoneId: Z1, name: api.example.com, type: A, routing: latency, setIdentifier: primary, values: [\"203.0.113.10\"]}\n" +
			"services:\n  api:\n    image: ghcr.io/acme/api:v1\n    containerPort: 8080\n"
	}
	r.Write("envs/prod-a.yaml", env("prod-a"))
	r.Commit("one env")
	if code, out, errOut := runCLI(t, "validate", "--repo", r.Dir, "--env", "prod-a"); code != 0 {
		t.Fatalf("validate alone: exit %d\n%s%s", code, out, errOut)
	}
	r.Write("envs/prod-b.yaml", env("prod-b"))
	r.Commit("a second env claims the same record set")
	code, out, errOut := runCLI(t, "validate", "--repo", r.Dir, "--env", "prod-b")
	if want := "envs/prod-b.yaml:5: route53.records[0]: record set api.example.com. A primary (zone Z1) is env prod-a's too: envs/prod-a.yaml declares it"; code == 0 || !strings.Contains(out+errOut, want) {
		t.Fatalf("validate: exit %d, want %q\n%s%s", code, want, out, errOut)
	}
}
