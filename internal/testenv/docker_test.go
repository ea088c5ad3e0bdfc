package testenv

import (
	"context"
	"regexp"
	"testing"
)

func TestAppImageVariants(t *testing.T) {
	cli := Docker(t)
	v1 := AppImage(t, "reconciler-test/testenv-app:v1")
	if again := AppImage(t, "reconciler-test/testenv-app:v1"); again != v1 {
		t.Errorf("second AppImage gave %s, want the cached %s", again, v1)
	}
	v2 := AppImageVariant(t, "reconciler-test/testenv-app:v2", "v2")
	if v2 == v1 {
		t.Errorf("variant v2 has the same image ID as v1: %s", v1)
	}
	same := AppImage(t, "reconciler-test/testenv-app:same")
	for ref, id := range map[string]string{"reconciler-test/testenv-app:v1": v1, "reconciler-test/testenv-app:v2": v2, "reconciler-test/testenv-app:same": same} {
		img, err := cli.ImageInspect(context.Background(), ref)
		if err != nil {
			t.Fatalf("tag %s: %v", ref, err)
		}
		if img.ID != id {
			t.Errorf("tag %s is image %s, AppImage returned %s", ref, img.ID, id)
		}
		if img.Config == nil || len(img.Config.Entrypoint) != 1 || img.Config.Entrypoint[0] != "/app/server" ||
			len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "serve" {
			t.Errorf("%s: entrypoint %v cmd %v, want [/app/server] [serve]", ref, img.Config.Entrypoint, img.Config.Cmd)
		}
		if _, ok := img.Config.ExposedPorts["8080/tcp"]; !ok {
			t.Errorf("%s: 8080/tcp not exposed", ref)
		}
	}
}

func TestUniqueEnvAndFreePort(t *testing.T) {
	re := regexp.MustCompile(`^t[a-z0-9]{6}$`)
	seen := map[string]bool{}
	for range 100 {
		e := UniqueEnv(t)
		if !re.MatchString(e) || seen[e] {
			t.Fatalf("UniqueEnv = %q (seen %t)", e, seen[e])
		}
		seen[e] = true
	}
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Errorf("FreePort = %d", p)
	}
}
