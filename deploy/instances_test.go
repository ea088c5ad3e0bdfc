package deploy

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// instanceRow is a row of the instance table in docs/operations.md.
var instanceRow = regexp.MustCompile("(?m)^\\| `reconciler@([a-z0-9-]+)` \\| ([^|]+?) \\| `([^`]+)` \\| `([^`]+)` \\|$")

// envFile parses deploy/reconciler.env: KEY=VALUE lines, comments skipped.
func envFile(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("reconciler.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("reconciler.env: %q is not KEY=VALUE", line)
		}
		vars[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vars
}

// execStart returns the unit's ExecStart as systemd would run it for
// instance env with vars from its EnvironmentFile: %i replaced, line
// continuations joined, ${VAR} and $VAR expanded, split on blanks.
func execStart(t *testing.T, unit, env string, vars map[string]string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?ms)^ExecStart=(.*?[^\\])$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatal("reconciler@.service has no ExecStart")
	}
	line := strings.ReplaceAll(strings.ReplaceAll(m[1], "\\\n", " "), "%i", env)
	line = regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).ReplaceAllStringFunc(line, func(s string) string {
		return vars[strings.Trim(s, "${}")]
	})
	return strings.Fields(line)
}

func flagOf(argv []string, name string) string {
	for i, a := range argv {
		if a == name && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

// TestInstancesSideBySide: the instances docs/operations.md tells to set up
// (deploy/reconciler.env with the two values of each row of its table),
// run by the shipped deploy/reconciler@.service, give each agent its own
// env, a loopback --listen no other instance on the host has, and the ref
// the approval scheme needs: main for dev, deploy/ENV for staging and prod.
func TestInstancesSideBySide(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("reconciler@.service")
	if err != nil {
		t.Fatal(err)
	}
	base := envFile(t)
	for _, k := range []string{"RECONCILER_REF", "RECONCILER_LISTEN"} {
		if _, ok := base[k]; !ok {
			t.Fatalf("reconciler.env has no %s for the table to override", k)
		}
	}
	rows := instanceRow.FindAllStringSubmatch(string(doc), -1)
	if len(rows) != 3 {
		t.Fatalf("docs/operations.md: want the instance table with dev, staging and prod, found %d rows", len(rows))
	}
	listens := map[string]string{} // host + address → instance
	for _, r := range rows {
		env, host, ref, listen := r[1], r[2], r[3], r[4]
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		vars["RECONCILER_REF"], vars["RECONCILER_LISTEN"] = ref, listen
		argv := execStart(t, string(unit), env, vars)
		if got := flagOf(argv, "--env"); got != env {
			t.Errorf("reconciler@%s runs --env %q", env, got)
		}
		wantRef := "deploy/" + env
		if env == "dev" {
			wantRef = "main"
		}
		if got := flagOf(argv, "--ref"); got != wantRef {
			t.Errorf("reconciler@%s follows %q, want %q (approval: docs/operations.md)", env, got, wantRef)
		}
		addr := flagOf(argv, "--listen")
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("reconciler@%s listens on %q, want loopback", env, addr)
		}
		if other, ok := listens[host+" "+addr]; ok {
			t.Errorf("reconciler@%s and reconciler@%s both listen on %s on the %s", env, other, addr, host)
		}
		listens[host+" "+addr] = env
	}
	if rows[0][2] != rows[1][2] {
		t.Errorf("docs/operations.md: dev and staging are on %q and %q, want one host", rows[0][2], rows[1][2])
	}
}
