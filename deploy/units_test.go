package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// shippedBinary is where the units expect the reconciler binary.
const shippedBinary = "/usr/local/bin/reconciler"

// verifyUnit runs `systemd-analyze verify` on unit text installed as name
// (an instance name for a template) and returns what it reported: its
// output, and the exit status when it failed. systemd-analyze reports many
// problems (a bad value, an unknown key) as warnings with exit status 0, so
// any output counts. verify also checks that the ExecStart binary exists:
// the shipped path is replaced by a binary that does, and nothing else.
func verifyUnit(t *testing.T, name, text string) string {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testenv.SkipOrFail(t, "systemd-analyze not installed (apt-get install systemd): %v", err)
	}
	stub, err := exec.LookPath("true")
	if err != nil {
		t.Fatalf("no true(1) to stand in for %s: %v", shippedBinary, err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, shippedBinary, stub)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", path).CombinedOutput()
	report := strings.TrimSpace(string(out))
	if err != nil {
		report += "\n(" + err.Error() + ")"
	}
	return strings.TrimSpace(report)
}

// TestUnitsVerify: every unit in deploy/ passes `systemd-analyze verify`
// without a word, and the check does catch a broken unit.
func TestUnitsVerify(t *testing.T) {
	units, err := filepath.Glob("*.service")
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in deploy/: %v", err)
	}
	for _, u := range units {
		t.Run(u, func(t *testing.T) {
			b, err := os.ReadFile(u)
			if err != nil {
				t.Fatal(err)
			}
			name := u
			if strings.HasSuffix(u, "@.service") {
				name = strings.TrimSuffix(u, "@.service") + "@prod.service"
			}
			if out := verifyUnit(t, name, string(b)); out != "" {
				t.Fatalf("systemd-analyze verify %s:\n%s", u, out)
			}
		})
	}
	// A comment after a value is part of the value for systemd: the unit
	// that docs/operations.md carried before had one, and verify says so.
	bad := "[Service]\nExecStart=" + shippedBinary + " run\nNoNewPrivileges=false  # a comment\n"
	if out := verifyUnit(t, "bad.service", bad); !strings.Contains(out, "Failed to parse boolean") {
		t.Fatalf("verify accepted a broken unit: %q", out)
	}
}

// fence matches a fenced block of a given language in Markdown.
var fence = regexp.MustCompile("(?ms)^```(ini|systemd)\n(.*?)^```\n")

// TestDocsUnitsAreShipped: every unit shown in the docs is a shipped file
// verbatim, and docs/operations.md shows the agent's unit.
func TestDocsUnitsAreShipped(t *testing.T) {
	shipped := map[string]string{}
	units, _ := filepath.Glob("*.service")
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		shipped[string(b)] = u
	}
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs: %v", err)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllStringSubmatch(string(b), -1) {
			block := m[2]
			if !strings.Contains(block, "[Service]") {
				continue
			}
			u, ok := shipped[block]
			if !ok {
				t.Errorf("%s shows a unit that is not a file of deploy/ verbatim:\n%s", d, block)
				continue
			}
			seen[filepath.Base(d)+" "+u] = true
		}
	}
	if !seen["operations.md reconciler@.service"] {
		t.Errorf("docs/operations.md does not show deploy/reconciler@.service verbatim (in an ini block)")
	}
}

// TestAgentUnitPerInstance: the agent's unit is a template whose instances
// can run side by side (reconciler@dev and reconciler@staging on one host)
// and write nginx's files: per-instance settings and credentials, the
// listen address from them, and /etc/nginx/conf.d writable under
// ProtectSystem. The unit docs/operations.md showed before had none of it.
func TestAgentUnitPerInstance(t *testing.T) {
	b, err := os.ReadFile("reconciler@.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"\nEnvironmentFile=/etc/reconciler/%i/reconciler.env\n",
		"\nLoadCredential=git-token:/etc/reconciler/%i/git-token\n",
		"\nLoadCredential=webhook-secret:/etc/reconciler/%i/webhook-secret\n",
		"\n    --env %i \\\n",
		"\n    --listen ${RECONCILER_LISTEN} \\\n",
		"\nEnvironment=DOCKER_CONFIG=/etc/reconciler/docker\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("reconciler@.service lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(unit, "\nProtectSystem=") && !regexp.MustCompile(`(?m)^ReadWritePaths=.*/etc/nginx/conf\.d`).MatchString(unit) {
		t.Errorf("reconciler@.service protects the file system but does not let the agent write /etc/nginx/conf.d")
	}
	if strings.Contains(unit, "%d/") {
		t.Errorf("reconciler@.service names a credential file on the command line: a credential that is not loaded must mean not used")
	}
}
