package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Golden compares got with the golden file path, after writing got there
// when update is set (the package's -update flag), and fails t with got
// when they differ.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

// PromtoolCheckMetrics runs `promtool check metrics` on text, the
// Prometheus text exposition format, and fails t when promtool refuses
// it (or, under CI, when promtool is not installed).
func PromtoolCheckMetrics(t testing.TB, text string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		SkipOrFail(t, "promtool not installed (Debian package prometheus): %v", err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n%s", err, out, text)
	}
}
