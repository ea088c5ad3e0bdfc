package state

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestPromote(t *testing.T) {
	t.Parallel()
	file := func(env, web, worker string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("environment: " + env + "\nservices:\n  web:\n    image: " + web +
			" # the site\n    containerPort: 8080\n  worker:\n    image: " + worker + "\n")}
	}
	fsys := fstest.MapFS{
		"envs/staging.yaml": file("staging", "web:v2", "worker:v9"),
		"envs/prod.yaml":    file("prod", "web:v1", "worker:v9"),
	}
	pr, err := Promote(fsys, "staging", "prod", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Set) != 1 || pr.Set["web"] != "web:v2" || pr.Old["web"] != "web:v1" {
		t.Fatalf("set %v old %v", pr.Set, pr.Old)
	}
	if !strings.Contains(string(pr.Data), "image: web:v2 # the site\n") || !strings.Contains(pr.Diff, "-    image: web:v1 # the site\n+    image: web:v2 # the site\n") {
		t.Fatalf("data:\n%s\ndiff:\n%s", pr.Data, pr.Diff)
	}
	if _, err := Promote(fsys, "staging", "prod", []string{"api"}); err == nil || !strings.Contains(err.Error(), "--service api: not in envs/staging.yaml") {
		t.Fatalf("unknown service: %v", err)
	}
	if _, err := Promote(fsys, "prod", "prod", nil); err == nil {
		t.Fatal("promote to itself: no error")
	}
	fsys["envs/staging.yaml"] = file("staging", "web:bad tag", "worker:v9")
	if _, err := Promote(fsys, "staging", "prod", nil); err == nil || !strings.Contains(err.Error(), "envs/staging.yaml") {
		t.Fatalf("invalid source: %v", err)
	}
}
