package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/image"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/backup"
)

// TestRegistry: images pulled from a real registry with htpasswd auth, by
// tag and by digest; a missing tag and wrong credentials fail before any
// change; a digest pin stays deployed when its tag moves. Not parallel:
// DOCKER_CONFIG is set with t.Setenv.
func TestRegistry(t *testing.T) {
	w := newWorld(t)
	reg := testenv.StartRegistry(t, "deployer", "registry-pass")
	repo := reg.Addr + "/" + w.env + "/app"
	v1, v2 := w.ownImages()
	d1 := reg.Push(t, w.cli, v1, w.env+"/app:v1")
	d2 := reg.Push(t, w.cli, v2, w.env+"/app:v2")
	ctx := context.Background()
	// Drop the local tags Push made, so that apply has to pull; drop what
	// apply pulled when the test ends (after its containers are gone).
	for _, ref := range []string{repo + ":v1", repo + ":v2"} {
		if _, err := w.cli.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		testenv.RemoveEnvContainers(t, w.cli, w.env)
		for _, ref := range []string{repo + ":v1", repo + ":v2", repo + ":v9", repo + "@" + d1, repo + "@" + d2} {
			w.cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true})
		}
	})
	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, "deployer", "registry-pass"))

	variant := func() string {
		_, body := w.get("/file?path=/variant")
		return strings.TrimSpace(body)
	}

	// By tag.
	w.commit(spec{image: repo + ":v1", version: "v1", config: "a: 1\n"}, "v1 by tag")
	r := w.mustRun(exitOK, "check")
	if !strings.Contains(r.stdout, "ok   image "+repo+":v1: in its registry as "+d1) {
		t.Fatalf("check output:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	if code, body := w.get("/"); code != 200 {
		t.Fatalf("apply returned before nginx served the new site: %d %q", code, body)
	}
	if v := variant(); v != "v1" {
		t.Fatalf("by tag: variant %q, want v1", v)
	}
	ids, reloads := w.containers(), w.reloadCount()
	backups, _ := backup.List(filepath.Join(w.stateDir, "backups", w.env))
	same := func(what string) {
		t.Helper()
		b, _ := backup.List(filepath.Join(w.stateDir, "backups", w.env))
		if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) || w.reloadCount() != reloads || len(b) != len(backups) {
			t.Fatalf("%s changed the host: containers %v → %v, reloads %d → %d, backups %d → %d", what, ids, got, reloads, w.reloadCount(), len(backups), len(b))
		}
		if v := variant(); v != "v1" {
			t.Fatalf("%s: variant %q, want v1", what, v)
		}
	}

	// A tag that is not in the registry fails before any change.
	w.commit(spec{image: repo + ":v9", version: "v9", config: "a: 1\n"}, "missing tag")
	r = w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "pre-deploy check image "+repo+":v9 failed") || !strings.Contains(r.stderr, "is not available from "+reg.Addr) {
		t.Fatalf("missing tag:\n%s", r.stderr)
	}
	same("a missing tag")

	// Wrong credentials fail clearly, before any change.
	w.commit(spec{image: repo + ":v2", version: "v2", config: "a: 1\n"}, "v2 by tag")
	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, "deployer", "wrong-pass"))
	r = w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, "pre-deploy check image "+repo+":v2 failed") || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Fatalf("wrong credentials:\n%s", r.stderr)
	}
	same("wrong credentials")
	t.Setenv("DOCKER_CONFIG", reg.DockerConfig(t, "deployer", "registry-pass"))

	// By digest: v2's digest is deployed, and stays when the tag moves.
	w.commit(spec{image: repo + "@" + d2, version: "v2", config: "a: 1\n"}, "v2 by digest")
	w.mustRun(exitOK, "apply")
	if v := variant(); v != "v2" {
		t.Fatalf("by digest: variant %q, want v2", v)
	}
	reg.Push(t, w.cli, v1, w.env+"/app:v2") // the tag now names v1
	w.mustRun(exitOK, "diff")
	w.mustRun(exitOK, "apply")
	if v := variant(); v != "v2" {
		t.Fatalf("after the tag moved: variant %q, want v2 (the pinned digest)", v)
	}
}
