package state

import (
	"strings"
	"testing"
)

const imagesFile = `# prod: the comment stays
environment: prod
services:
  api:
    image: ghcr.io/acme/api:v1   # pinned
    containerPort: 8080
  web:
    image: "ghcr.io/acme/web@sha256:aaaa"
  worker:
    command: ["w"]
    image: 'ghcr.io/acme/worker:v1'
migrations:
  image: ghcr.io/acme/api:v1
`

func TestImages(t *testing.T) {
	got, err := Images([]byte(imagesFile))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		image string
		line  int
	}{
		"api":           {"ghcr.io/acme/api:v1", 5},
		"web":           {"ghcr.io/acme/web@sha256:aaaa", 8},
		"worker":        {"ghcr.io/acme/worker:v1", 11},
		MigrationsImage: {"ghcr.io/acme/api:v1", 13},
	}
	if len(got) != len(want) {
		t.Fatalf("Images = %v, want %d entries", got, len(want))
	}
	for k, w := range want {
		if got[k].Image != w.image || got[k].Line != w.line {
			t.Errorf("Images[%s] = %q line %d, want %q line %d", k, got[k].Image, got[k].Line, w.image, w.line)
		}
	}
}

func TestSetImages(t *testing.T) {
	got, err := SetImages([]byte(imagesFile), map[string]string{
		"api":           "ghcr.io/acme/api:v2",
		"web":           "ghcr.io/acme/web@sha256:bbbb",
		"worker":        "ghcr.io/acme/worker:v10",
		MigrationsImage: "ghcr.io/acme/api:v2",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer(
		"api:v1   # pinned", "api:v2   # pinned",
		`"ghcr.io/acme/web@sha256:aaaa"`, `"ghcr.io/acme/web@sha256:bbbb"`,
		`'ghcr.io/acme/worker:v1'`, `'ghcr.io/acme/worker:v10'`,
		"  image: ghcr.io/acme/api:v1\n", "  image: ghcr.io/acme/api:v2\n",
	).Replace(imagesFile)
	if string(got) != want {
		t.Errorf("SetImages:\n%s\nwant:\n%s", got, want)
	}

	if _, err := SetImages([]byte(imagesFile), map[string]string{"nope": "x:1"}); err == nil || !strings.Contains(err.Error(), "nope: no image") {
		t.Errorf("unknown service: err = %v", err)
	}
	if _, err := SetImages([]byte(imagesFile), map[string]string{"api": "x:1 # y"}); err == nil {
		t.Errorf("image with a space accepted")
	}
}

func TestImagesRejectsAliases(t *testing.T) {
	data := "x: &img ghcr.io/a:v1\nservices:\n  api:\n    image: *img\n"
	if _, err := Images([]byte(data)); err == nil || !strings.Contains(err.Error(), "services.api.image") {
		t.Errorf("alias: err = %v", err)
	}
}
