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

// TestPromoteBetweenRegions: two region envs extending one base. An image
// written in the region's own file is promoted there; one the target
// inherits from the base is refused, naming the base, and nothing changes.
func TestPromoteBetweenRegions(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"envs/prod-base.yaml": {Data: []byte("services:\n  web:\n    image: web:v1\n    containerPort: 8080\n  worker:\n    image: worker:v1\n")},
		"envs/prod-us-east-1.yaml": {Data: []byte("extends: prod-base.yaml\nenvironment: prod-us-east-1\n" +
			"services:\n  web:\n    image: web:v3\n  worker:\n    image: worker:v2\n")},
		"envs/prod-eu-west-1.yaml": {Data: []byte("extends: prod-base.yaml\nenvironment: prod-eu-west-1\n" +
			"services:\n  web:\n    image: web:v2 # pinned\n")},
	}
	pr, err := Promote(fsys, "prod-us-east-1", "prod-eu-west-1", []string{"web"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Path != "envs/prod-eu-west-1.yaml" || pr.Set["web"] != "web:v3" || pr.Old["web"] != "web:v2" ||
		!strings.Contains(string(pr.Data), "image: web:v3 # pinned\n") {
		t.Fatalf("path %s set %v old %v data:\n%s", pr.Path, pr.Set, pr.Old, pr.Data)
	}
	// No --service was given: the error does not name the flag.
	_, err = Promote(fsys, "prod-us-east-1", "prod-eu-west-1", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "service worker: its image worker:v1 is inherited from envs/prod-base.yaml (extends), not written in envs/prod-eu-west-1.yaml") {
		t.Fatalf("inherited image: %v", err)
	}
	_, err = Promote(fsys, "prod-us-east-1", "prod-eu-west-1", []string{"worker"})
	if err == nil || !strings.HasPrefix(err.Error(), "--service worker: its image worker:v1 is inherited from envs/prod-base.yaml") {
		t.Fatalf("inherited image, --service worker: %v", err)
	}
	// An image the base inherits from its own base names the file that
	// writes it, where it is changed.
	fsys["envs/prod-base.yaml"] = &fstest.MapFile{Data: []byte("extends: common/images.yaml\nservices:\n  web:\n    image: web:v1\n    containerPort: 8080\n")}
	fsys["envs/common/images.yaml"] = &fstest.MapFile{Data: []byte("services:\n  worker:\n    image: worker:v1\n")}
	_, err = Promote(fsys, "prod-us-east-1", "prod-eu-west-1", []string{"worker"})
	if err == nil || !strings.Contains(err.Error(), "is inherited from envs/common/images.yaml (extends)") {
		t.Fatalf("image of the base's base: %v", err)
	}
	// The other way: FROM's images come from its file and its base alike.
	fsys["envs/prod-us-east-1.yaml"] = &fstest.MapFile{Data: []byte("extends: prod-base.yaml\nenvironment: prod-us-east-1\nservices:\n  web:\n    image: web:v1\n")}
	pr, err = Promote(fsys, "prod-eu-west-1", "prod-us-east-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Set) != 1 || pr.Set["web"] != "web:v2" {
		t.Fatalf("set %v, want web:v2 only (worker is the base's on both sides)", pr.Set)
	}
}
