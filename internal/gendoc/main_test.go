package main

import (
	"os"
	"strings"
	"testing"
)

// TestReferenceCurrent fails when docs/env-reference.md no longer matches
// the types in state/env.go.
func TestReferenceCurrent(t *testing.T) {
	src, err := os.ReadFile("../../state/env.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render("state/env.go", src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/env-reference.md")
	if err != nil {
		t.Fatalf("%v: run go generate ./...", err)
	}
	if string(got) != string(want) {
		t.Fatalf("docs/env-reference.md is stale: run go generate ./... and commit the result")
	}
}

// TestRenderFollowsTheTypes checks that a new field shows up: the reference
// is built from the source, not kept by hand.
func TestRenderFollowsTheTypes(t *testing.T) {
	src := []byte(`package state
// Env is the file.
type Env struct {
	// Services by name.
	Services map[string]Service ` + "`json:\"services\"`" + `
}
// Service is one service.
type Service struct {
	// Image is required.
	Image string ` + "`json:\"image\"`" + `
	// Replicas is new.
	Replicas int ` + "`json:\"replicas,omitempty\"`" + `
	internal string
}
const DefaultReplicas = 1
`)
	out, err := Render("env.go", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `services` | map of name → [Service](#service) | Services by name. |",
		"| `replicas` | integer | Replicas is new. |",
		"| `DefaultReplicas` | `1` |",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "`internal`") {
		t.Errorf("unexported field documented")
	}
}
