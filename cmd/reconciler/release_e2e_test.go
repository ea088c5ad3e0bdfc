package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/templates"
)

// appRef is the demo app's repository in this file's tests.
const appRef = "i15a-test/app"

// releaseWorld is a world with two public services (web, api) and a
// worker, deployed with release: atomic; its env is named i15a... so
// that it never collides with another branch's tests.
type releaseWorld struct {
	*world
	apiPort int
}

func newReleaseWorld(t *testing.T) *releaseWorld {
	t.Helper()
	cli := testenv.Docker(t)
	// Tags of this branch's own: tests elsewhere on the machine tag the
	// shared reconciler-test/app with their build of the demo app.
	testenv.AppImageVariant(t, appRef+":v1", "v1")
	testenv.AppImageVariant(t, appRef+":v2", "v2")
	w := &world{t: t, env: "i15a" + testenv.UniqueEnv(t)[1:], cli: cli, ngx: testenv.StartNginx(t), repo: testenv.NewRepo(t),
		stateDir: t.TempDir(), port: testenv.FreePort(t)}
	w.reloads = filepath.Join(w.ngx.Dir, "reloads")
	testenv.RemoveEnvContainers(t, cli, w.env)
	return &releaseWorld{world: w, apiPort: testenv.FreePort(t)}
}

// release is what a commit of the release world varies.
type release struct {
	version  string
	bake     string
	apiEnv   string // extra YAML lines under api.env, indented 6
	webExtra string // extra YAML lines under web.deploy, indented 6
}

func (w *releaseWorld) yaml(r release) string {
	svc := func(name string, port int, env, deploy string) string {
		return fmt.Sprintf(`  %s:
    image: %s:%s
    containerPort: 8080
    listen: "127.0.0.1:%d"
    env:
      VERSION: %s
%s    memory: 64m
    health:
      path: /health
      interval: 100ms
      timeout: 1s
      startTimeout: 3s
    drain: 500ms
    deploy:
      bake: %s
%s`, name, appRef, r.version, port, r.version, env, r.bake, deploy)
	}
	return fmt.Sprintf(`environment: %s
release: atomic
nginx:
  confDir: %s
  test: %s
  reload: echo reload >> %s && %s
  logDir: %s
services:
%s%s  worker:
    image: %s:%s
    command: ["worker"]
    env:
      VERSION: %s
    health:
      interval: 100ms
      startTimeout: 3s
`, w.env, w.ngx.ConfDir, w.ngx.Test, w.reloads, w.ngx.Reload, w.ngx.Dir,
		svc("web", w.port, "", r.webExtra), svc("api", w.apiPort, r.apiEnv, ""), appRef, r.version, r.version)
}

func (w *releaseWorld) commitRelease(r release, msg string) {
	w.repo.Write("envs/"+w.env+".yaml", w.yaml(r))
	w.repo.Commit(msg)
}

// fetch GETs path through nginx's address of the service on port.
func fetch(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestAtomicRelease: a three-service release with release: atomic,
// against the real engine and nginx, under keep-alive load through nginx
// on both public services: a host too small for the doubled set is
// refused with the figures of both orders; a good release moves all
// three and takes no
// longer than the worst case diff printed; a release in which one service
// fails its health checks during the joint bake switches all three back,
// as nginx answers, and no request fails.
func TestAtomicRelease(t *testing.T) {
	t.Parallel()
	w := newReleaseWorld(t)
	w.commitRelease(release{version: "v1", bake: "4s"}, "v1")
	w.mustRun(exitOK, "apply")

	webLoad := startLoad(t, w.port, 2)
	apiLoad := startLoad(t, w.apiPort, 2)

	// A good release: the estimate diff prints bounds the real time.
	w.commitRelease(release{version: "v2", bake: "4s"}, "v2")
	r := w.mustRun(exitChanges, "diff")
	for _, want := range []string{"~ release: switch together: api blue → green, web blue → green, worker blue → green", "together (watch api/green 4s; watch web/green 4s)", "Duration: ≤ "} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("diff lacks %q:\n%s", want, r.stdout)
		}
	}
	// A host too small for the doubled set: refused before any change,
	// with the figures of both orders (other tests' containers run on
	// this engine too: a host of 1m fits neither).
	ids := w.containers()
	r = w.mustRun(exitFailed, "apply", "--host-memory", "1m", "--memory-reserve", "0")
	for _, want := range []string{"pre-deploy check memory failed: the deploy needs up to", "release: atomic runs the old and the new color of all 3 changed services at once",
		"release: per-service (one service after the other) would need up to", "nothing was changed"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("apply over the memory lacks %q:\n%s", want, r.stderr)
		}
	}
	if got := w.containers(); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("a refused release changed the containers: %v → %v", ids, got)
	}

	var pj planJSON
	if err := json.Unmarshal([]byte(w.mustRun(exitChanges, "diff", "-o", "json").stdout), &pj); err != nil {
		t.Fatal(err)
	}
	estimate := time.Duration(pj.WorstCaseSeconds * float64(time.Second))
	start := time.Now()
	w.mustRun(exitOK, "apply")
	measured := time.Since(start)
	t.Logf("atomic release of 3 services, 4s bakes: measured %s, worst case printed %s (%s)", measured.Round(time.Millisecond), pj.WorstCase, estimate)
	if measured > estimate || estimate > 10*measured {
		t.Errorf("measured %s, estimate %s: want measured ≤ estimate ≤ 10 × measured", measured, estimate)
	}
	for _, port := range []int{w.port, w.apiPort} {
		if code, body := fetch(t, port, "/"); code != 200 || !strings.HasPrefix(body, "version=v2 ") {
			t.Fatalf("GET / on :%d = %d %q, want v2", port, code, body)
		}
	}

	// api's next version turns unhealthy once traffic moved to it,
	// during the 8s bake (the test creates its trigger file as soon as
	// nginx routes api to it). All three go back to v2.
	w.commitRelease(release{version: "v1", bake: "8s", apiEnv: "      UNHEALTHY_FILE: /app/unhealthy\n"}, "v3: api goes bad")
	// The containers that serve; the previous release kept stopped
	// (the blues) is replaced by this release, and gone once it fails.
	running := func() map[string]string {
		out := map[string]string{}
		for n, id := range w.containers() {
			if w.state(n) == "running" {
				out[n] = id
			}
		}
		return out
	}
	before := running()
	done := w.applyAsync()
	waitFor(t, "nginx to route api to blue", 2*time.Minute, func() bool {
		_, body := fetch(t, w.apiPort, templates.RoutePath)
		return body == "blue"
	})
	w.touch(w.env+"-api-blue", "unhealthy")
	r = <-done
	if r.code != exitFailed {
		t.Fatalf("apply: exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	for _, want := range []string{"watch api/blue", "not healthy", "rolled back", "switch web → blue", "switch api → blue", "traffic is on the version that served before"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("apply output lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, port := range []int{w.port, w.apiPort} {
		if code, body := fetch(t, port, templates.RoutePath); code != 200 || body != "green" {
			t.Errorf("nginx on :%d routes to %d %q, want green (the version that served before)", port, code, body)
		}
		if code, body := fetch(t, port, "/"); code != 200 || !strings.HasPrefix(body, "version=v2 ") {
			t.Errorf("GET / on :%d = %d %q, want v2", port, code, body)
		}
	}
	if after := running(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("running containers after the rolled-back release %v, want %v", after, before)
	}
	webLoad.end()
	apiLoad.end()
	for name, l := range map[string]*load{"web": webLoad, "api": apiLoad} {
		if n := l.failed.Load(); n > 0 || l.ok.Load() == 0 {
			t.Errorf("%s: %d requests failed through nginx (%v), %d succeeded", name, n, l.errs, l.ok.Load())
		}
		if l.versions["v1"] == 0 || l.versions["v2"] == 0 {
			t.Errorf("%s served %v: want v1 (first release, and the bad one while it baked) and v2", name, l.versions)
		}
	}
}

// TestLatencyGate: a bake with maxLatency, through the real nginx: a new
// version whose answers take 300ms (upstream time in nginx's access log)
// is switched back, and no request fails; the previous version serves.
func TestLatencyGate(t *testing.T) {
	t.Parallel()
	w := newReleaseWorld(t) // its env name is this branch's
	gate := "    deploy:\n      bake: 3s\n      maxLatency: 100ms\n      latencyPercentile: 90\n      minRequests: 10\n"
	w.commit(spec{image: appRef + ":v1", version: "v1", config: "a: 1\n", webExtra: gate}, "v1")
	w.mustRun(exitOK, "apply")
	l := startLoad(t, w.port, 2)
	w.commit(spec{image: appRef + ":v2", version: "v2", config: "a: 1\n", webExtra: gate, webEnv: "      DELAY: 300ms\n"}, "v2 is slow")
	r := w.mustRun(exitFailed, "apply")
	for _, want := range []string{"p90 of the upstream response time of", "above maxLatency 100ms", "rolled back"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("apply output lacks %q:\n%s", want, r.stderr)
		}
	}
	if code, body := fetch(t, w.port, templates.RoutePath); code != 200 || body != "blue" {
		t.Errorf("nginx routes to %d %q, want blue", code, body)
	}
	w.wantServing("v1")
	l.end()
	if n := l.failed.Load(); n > 0 || l.versions["v2"] == 0 {
		t.Errorf("%d requests failed through nginx (%v); versions served %v, want v2 during the bake", n, l.errs, l.versions)
	}
}
