package state

import (
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// TestStarterValidates: the starter file loads as written, with one HTTP
// service and one worker; uncommented, every optional block is a known
// field of the env file.
func TestStarterValidates(t *testing.T) {
	text := Starter("qa")
	e, err := Load(fstest.MapFS{EnvPath("qa"): {Data: []byte(text)}}, "qa")
	if err != nil {
		t.Fatalf("the starter does not load:\n%v", err)
	}
	if len(e.Services) != 2 || e.Services["web"].ContainerPort == 0 || e.Services["worker"].ContainerPort != 0 {
		t.Fatalf("services %v, want web (HTTP) and worker", SortedKeys(e.Services))
	}
	for _, key := range []string{"nginx", "aws", "defaults", "migrations", "notify", "backup", "network", "keepImages", "route53"} {
		if !regexp.MustCompile(`(?m)^# ` + key + `:`).MatchString(text) {
			t.Errorf("optional block %s is not in the starter, commented out", key)
		}
	}
	// Uncommenting every top-level block still parses (no unknown field).
	topKey := regexp.MustCompile(`^# [a-z][A-Za-z0-9]*:`)
	var b strings.Builder
	body := false // past the header comment
	for _, line := range strings.Split(text, "\n") {
		body = body || strings.HasPrefix(line, "environment:")
		if body && (topKey.MatchString(line) || strings.HasPrefix(line, "#   ")) {
			line = line[2:]
		}
		b.WriteString(line + "\n")
	}
	_, err = Load(fstest.MapFS{EnvPath("qa"): {Data: []byte(b.String())}}, "qa")
	for _, fe := range strings.Split(errString(err), "\n") {
		if strings.Contains(fe, "unknown field") || strings.Contains(fe, "invalid YAML") {
			t.Errorf("uncommented starter: %s", fe)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
