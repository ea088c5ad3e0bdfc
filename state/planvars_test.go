package state_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

// TestRepoEnvsUsePlanVariables: every service of the shipped environments
// gets the variables the DevOps MCP plan names (issue 16, item 1), with the
// plan's values where it fixes one, none of the old names, and every
// ${VAR} without a default in its config file is set.
func TestRepoEnvsUsePlanVariables(t *testing.T) {
	fsys := os.DirFS("..")
	environment := map[string]string{"dev": "development", "staging": "staging", "prod": "production"}
	placeholder := regexp.MustCompile(`\$\{([A-Z0-9_]+)(:-[^}]*)?\}`)
	for _, env := range []string{"dev", "staging", "prod"} {
		t.Run(env, func(t *testing.T) {
			e, err := state.Load(fsys, env)
			if err != nil {
				t.Fatalf("Load:\n%v", err)
			}
			values := map[state.SecretRef]string{}
			for _, ref := range e.SecretRefs() {
				values[ref] = "value of " + ref.String()
			}
			d, err := state.Resolve(e, fsys, "HEAD", values)
			if err != nil {
				t.Fatalf("Resolve:\n%v", err)
			}
			ssm := func(name string) string { return "value of ssm:/devops-mcp/" + env + "/" + name }
			for _, s := range d.Services {
				plain := map[string]string{
					"AWS_REGION": "us-east-1", "DATABASE_PORT": "5432", "DATABASE_USER": "dbadmin",
					"DATABASE_NAME": "devops_mcp", "DATABASE_SSL_MODE": "require", "REDIS_TLS_ENABLED": "true",
					"ENVIRONMENT": environment[env], "MCP_SERVER_URL": "http://mcp-server:8080",
				}
				secret := map[string]string{"DATABASE_PASSWORD": ssm("database_password"), "REDIS_ADDR": ssm("redis_endpoint")}
				if port := s.Spec.ContainerPort; port > 0 {
					plain["PORT"] = map[string]string{"mcp-server": "8080", "rest-api": "8081"}[s.Name]
					secret["ADMIN_API_KEY"] = ssm("admin_api_key")
				}
				if s.Name == "rest-api" {
					plain["API_LISTEN_ADDRESS"] = ":8081"
				}
				for k, want := range plain {
					if got, ok := s.Spec.Env[k]; !ok || got != want {
						t.Errorf("%s: %s = %q (set %v), want %q", s.Name, k, got, ok, want)
					}
				}
				if s.Spec.Env["DATABASE_HOST"] == "" {
					t.Errorf("%s: DATABASE_HOST is not set", s.Name)
				}
				for k, want := range secret {
					if got := s.Spec.Secrets[k]; got != want {
						t.Errorf("%s: secret %s = %q, want %q", s.Name, k, got, want)
					}
				}
				for _, old := range []string{"REDIS_ENDPOINT", "DATABASE_SSLMODE"} {
					_, inEnv := s.Spec.Env[old]
					_, inSecrets := s.Spec.Secrets[old]
					if inEnv || inSecrets {
						t.Errorf("%s: still sets %s", s.Name, old)
					}
				}
				for _, f := range s.Spec.Files {
					var body strings.Builder
					for _, line := range strings.Split(string(f.Content), "\n") {
						if !strings.HasPrefix(strings.TrimSpace(line), "#") {
							body.WriteString(line + "\n")
						}
					}
					for _, m := range placeholder.FindAllStringSubmatch(body.String(), -1) {
						if m[2] != "" {
							continue // has a default
						}
						_, inEnv := s.Spec.Env[m[1]]
						_, inSecrets := s.Spec.Secrets[m[1]]
						if !inEnv && !inSecrets {
							t.Errorf("%s: %s uses ${%s}, which the service does not set", s.Name, f.Target, m[1])
						}
					}
				}
			}
		})
	}
}

// TestStagingRunsCanary: the plan's Phase 3 (issue 16, item 7): staging's
// services with a port move traffic 10 → 50 → 100 percent, 10 minutes a
// step, and stay watched 10 minutes at 100; prod stays blue-green with its
// 5-minute bake until the documented switch (docs/operations.md).
func TestStagingRunsCanary(t *testing.T) {
	fsys := os.DirFS("..")
	staging, err := state.Load(fsys, "staging")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mcp-server", "rest-api"} {
		d := staging.Services[name].Deploy
		if d.Strategy != "canary" || !slices.Equal(d.Steps, []int{10, 50, 100}) || d.StepPause.D() != 10*time.Minute || d.Bake.D() != 10*time.Minute {
			t.Errorf("staging %s deploy = %+v, want canary [10 50 100], stepPause 10m, bake 10m", name, d)
		}
	}
	prod, err := state.Load(fsys, "prod")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mcp-server", "rest-api"} {
		if d := prod.Services[name].Deploy; d.Strategy == "canary" || d.Bake.D() != 5*time.Minute {
			t.Errorf("prod %s deploy = %+v, want blue-green with a 5m bake", name, d)
		}
	}
}

// TestRepoEnvsWriteEachSecretOnce: the shipped environments name every
// secret reference once (shared ones in defaults), so a moved parameter
// is one edit (issue 20, item 2).
func TestRepoEnvsWriteEachSecretOnce(t *testing.T) {
	ref := regexp.MustCompile(`(ssm|secretsmanager):\S+`)
	for _, env := range []string{"dev", "staging", "prod"} {
		data, err := os.ReadFile("../" + state.EnvPath(env))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, m := range ref.FindAllString(string(data), -1) {
			if seen[m]++; seen[m] == 2 {
				t.Errorf("%s: %s is written more than once; put it in defaults.secrets", state.EnvPath(env), m)
			}
		}
	}
}
