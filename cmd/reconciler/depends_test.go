package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// TestDependsOnFirstDeploy: on a first deploy of a caller that calls web
// by name every 20 ms (the demo app's fetch: one caller opens a new
// connection per call, the other keeps one alive, no retries) and of web
// itself, dependsOn: [web] makes web's change (start, health, traffic, its
// name proxy answering) run before the caller starts, and the caller
// loses no call. Without dependsOn the caller, first by name, starts
// before web has a name and loses calls: the control shows the test can
// fail. Then web's container is removed by hand: its name proxy answers
// the caller 503 (with Retry-After) at once.
func TestDependsOnFirstDeploy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		dependsOn string
	}{
		{"dependsOn", "    dependsOn: [web]\n"},
		{"control without dependsOn", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			// caller sorts before web: without dependsOn it would start first.
			caller := fmt.Sprintf(`  caller:
    image: %s
    command: ["fetch", "http://web:8080/"]
    health:
      interval: 100ms
      startTimeout: 8s
%s`, opsApp(t, "v1"), tc.dependsOn)
			env := strings.Replace(w.envYAML(spec{version: "v1", config: "a: 1\n"}), "services:\n", "services:\n"+caller, 1)
			w.repo.Write("envs/"+w.env+".yaml", env)
			w.repo.Commit("caller and web")

			r := w.mustRun(exitChanges, "diff")
			webAt, callerAt := strings.Index(r.stdout, "+ web: create"), strings.Index(r.stdout, "+ caller: create")
			if tc.dependsOn != "" && (webAt < 0 || callerAt < webAt || !strings.Contains(r.stdout, "after web (dependsOn: healthy)")) {
				t.Fatalf("diff does not show web first and why:\n%s", r.stdout)
			}
			w.mustRun(exitOK, "apply")

			logs := func() string {
				rc, err := w.cli.ContainerLogs(context.Background(), w.env+"-caller-blue", container.LogsOptions{ShowStdout: true, ShowStderr: true})
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				var b bytes.Buffer
				_, _ = stdcopy.StdCopy(&b, &b, rc)
				return b.String()
			}
			// 50 answers are a second of calls from both callers, all of
			// them after web was up.
			waitFor(t, "the caller to get 50 answers from web by name", 15*time.Second, func() bool {
				return strings.Contains(logs(), "fetch version=v1 ok=50 ")
			})
			out := logs()
			failed := strings.Count(out, "fetch error")
			if tc.dependsOn == "" {
				if failed == 0 {
					t.Fatalf("without dependsOn the caller lost no call: the control does not show what dependsOn prevents\n%s", out)
				}
				t.Logf("without dependsOn: %d failed calls, the first: %s", failed, firstLine(out[strings.Index(out, "fetch error"):]))
				return
			}
			if failed > 0 {
				t.Fatalf("the caller lost %d call(s) by name on a first deploy with dependsOn:\n%s", failed, out)
			}

			// web's only color removed by hand: its name proxy has no
			// live color and says so at once, 503 with Retry-After,
			// instead of holding the call and answering 502.
			if err := w.cli.ContainerRemove(context.Background(), w.env+"-web-blue", container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the caller to get 503 from web's name proxy", 10*time.Second, func() bool {
				return strings.Contains(logs(), "fetch error: status 503")
			})
		})
	}
}

// firstLine is s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
