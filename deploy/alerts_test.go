package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/agent"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/textfile"
)

// TestAlertRules: deploy/alerts.yml passes promtool check rules, and every
// reconciler_* metric it names is one the agent exports on /metrics or
// apply writes with --metrics-file (a renamed metric would leave an alert
// that can never fire).
func TestAlertRules(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	known := exported(t)
	var exprs strings.Builder // the rules without their comments
	for _, line := range strings.Split(string(rules), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			exprs.WriteString(line + "\n")
		}
	}
	used := regexp.MustCompile(`\breconciler_[a-z0-9_]+`).FindAllString(exprs.String(), -1)
	if len(used) < 5 {
		t.Fatalf("alerts.yml names %d reconciler metrics; want the deploy, rollback, crash-loop and health ones", len(used))
	}
	for _, name := range used {
		if !known[name] {
			t.Errorf("alerts.yml uses %s, which neither the agent nor --metrics-file exports", name)
		}
	}
	for _, want := range []string{"ReconcilerDeployFailed", "ReconcilerDeployRolledBack", "ReconcilerCrashLooping", "ReconcilerContainerUnhealthy"} {
		if !strings.Contains(string(rules), "alert: "+want+"\n") {
			t.Errorf("alerts.yml has no alert %s", want)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		testenv.SkipOrFail(t, "promtool not installed (Debian package prometheus; scripts/deps.sh installs it): %v", err)
	}
	out, err := exec.Command(promtool, "check", "rules", "alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules alerts.yml: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// exported returns the names of the agent's metrics (its own and the
// container resource collector's) and of the --metrics-file metrics.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	reg := agent.NewMetrics().Registry
	reg.MustRegister(agent.NewResourceCollector("test", nil, 0, zap.NewNop()))
	for _, n := range reg.Names() {
		names[n] = true
	}
	b := textfile.Render("test", history.Record{}, nil)
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(string(b), -1) {
		names[m[1]] = true
	}
	if len(names) < 20 {
		list := make([]string, 0, len(names))
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		t.Fatalf("found only %v", list)
	}
	return names
}
