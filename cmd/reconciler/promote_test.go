package main

import (
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

const promoteStaging = `environment: staging
services:
  api:
    image: ghcr.io/acme/api:v2
    containerPort: 8080
  worker:
    image: ghcr.io/acme/worker@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
  canary:
    image: ghcr.io/acme/canary:v1
migrations:
  image: ghcr.io/acme/api:v2
`

const promoteProd = `# prod: comments and layout survive a promotion
environment: prod
services:
  api:
    image: "ghcr.io/acme/api:v1"   # released 2024-05-01
    containerPort: 8080
  worker:
    image: ghcr.io/acme/worker:v1
  admin:
    image: ghcr.io/acme/admin:v7
migrations:
  image: ghcr.io/acme/api:v1
`

func TestPromote(t *testing.T) {
	r := testenv.NewRepo(t)
	r.Write("envs/staging.yaml", promoteStaging)
	r.Write("envs/prod.yaml", promoteProd)
	head := r.Commit("envs")
	r.Write("envs/prod.yaml", promoteProd+"# uncommitted edit\n")
	short := head[:7]
	promote := func(args ...string) (int, string, string) {
		return runCLI(t, append([]string{"promote", "--repo", r.Dir, "--author", "Promoter <p@example.com>"}, args...)...)
	}

	t.Run("one service", func(t *testing.T) {
		code, out, errOut := promote("--from", "staging", "--to", "prod", "--service", "api")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		branch := "promote/staging-to-prod-" + short
		if !strings.Contains(out, "branch "+branch) || !strings.Contains(out, `+    image: "ghcr.io/acme/api:v2"   # released 2024-05-01`) {
			t.Errorf("output:\n%s", out)
		}
		got := r.Git("show", branch+":envs/prod.yaml")
		want := strings.Replace(promoteProd, `"ghcr.io/acme/api:v1"`, `"ghcr.io/acme/api:v2"`, 1)
		if got+"\n" != want {
			t.Errorf("promoted file:\n%s\nwant:\n%s", got, want)
		}
		if p := r.Git("rev-parse", branch+"^"); p != head {
			t.Errorf("branch parent = %s, want %s", p, head)
		}
		if a := r.Git("log", "-1", "--format=%an <%ae>|%s", branch); a != "Promoter <p@example.com>|promote staging → prod: api" {
			t.Errorf("commit = %q", a)
		}
		// The checkout is untouched: same branch, same HEAD, the
		// uncommitted edit still there, nothing staged.
		if b := r.Git("rev-parse", "--abbrev-ref", "HEAD"); b != "main" {
			t.Errorf("current branch = %s", b)
		}
		if h := r.Git("rev-parse", "HEAD"); h != head {
			t.Errorf("HEAD moved to %s", h)
		}
		if st := r.Git("status", "--porcelain"); st != "M envs/prod.yaml" {
			t.Errorf("git status = %q, want only the uncommitted edit", st)
		}
		if fsck := r.Git("fsck", "--strict"); strings.Contains(fsck, "error") {
			t.Errorf("git fsck: %s", fsck)
		}

		code, _, errOut = promote("--from", "staging", "--to", "prod", "--service", "api")
		if code != 1 || !strings.Contains(errOut, "exists already") {
			t.Errorf("second promote of the same commit: exit %d, %s", code, errOut)
		}
		r.Git("branch", "-D", branch)
	})

	t.Run("all", func(t *testing.T) {
		code, out, errOut := promote("--from", "staging", "--to", "prod")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "only in envs/staging.yaml, left out: canary") {
			t.Errorf("output does not name the service left out:\n%s", out)
		}
		branch := "promote/staging-to-prod-" + short
		got := r.Git("show", branch+":envs/prod.yaml") + "\n"
		want := strings.NewReplacer(
			`"ghcr.io/acme/api:v1"`, `"ghcr.io/acme/api:v2"`,
			"ghcr.io/acme/worker:v1", "ghcr.io/acme/worker@sha256:"+strings.Repeat("b", 64),
			"  image: ghcr.io/acme/api:v1\n", "  image: ghcr.io/acme/api:v2\n",
		).Replace(promoteProd)
		if got != want {
			t.Errorf("promoted file:\n%s\nwant:\n%s", got, want)
		}
		if !strings.Contains(got, "admin:v7") {
			t.Errorf("a service only in prod changed")
		}
		// The promoted state validates at the new branch.
		code, out, errOut = runCLI(t, "validate", "--env", "prod", "--repo", r.Dir, "--ref", branch)
		if code != 0 {
			t.Errorf("validate at %s: exit %d\n%s%s", branch, code, out, errOut)
		}
		r.Git("branch", "-D", branch)
	})

	t.Run("nothing to promote", func(t *testing.T) {
		code, out, errOut := promote("--from", "prod", "--to", "staging", "--service", "admin")
		if code != 1 || !strings.Contains(errOut, "admin: not in envs/staging.yaml") {
			t.Errorf("unknown service: exit %d\n%s%s", code, out, errOut)
		}
		r.Write("envs/dev.yaml", strings.ReplaceAll(promoteStaging, "environment: staging", "environment: dev"))
		r.Commit("dev")
		code, out, errOut = promote("--from", "dev", "--to", "staging")
		if code != 0 || !strings.Contains(out, "nothing to promote") {
			t.Errorf("exit %d\n%s%s", code, out, errOut)
		}
		if b := r.Git("branch", "--list", "promote/*"); b != "" {
			t.Errorf("branch made with nothing to promote: %s", b)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		code, out, errOut := promote("--from", "staging", "--to", "prod", "--dry-run")
		if code != 0 || !strings.Contains(out, "no branch made") {
			t.Errorf("exit %d\n%s%s", code, out, errOut)
		}
		if b := r.Git("branch", "--list", "promote/*"); b != "" {
			t.Errorf("--dry-run made a branch: %s", b)
		}
	})
}
