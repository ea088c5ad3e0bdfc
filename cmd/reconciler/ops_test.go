package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/developer-mesh/reconciler/state"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
)

// opsApp returns this file's image tag of the demo app for variant v1 or
// v2. The tests here need the app's selftest and fetch modes; a tag of
// their own keeps them apart from tests built from another checkout that
// re-tag the shared reconciler-test/app images.
func opsApp(t *testing.T, variant string) string {
	ref := "reconciler-test/ops-app:" + variant
	testenv.AppImageVariant(t, ref, variant)
	return ref
}

// TestLogs: reconciler logs prints what the live color wrote, and follows
// it until cancelled.
func TestLogs(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	w.mustRun(exitOK, "apply")
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n"}, "v2")
	w.mustRun(exitOK, "apply")
	w.wantServing("v2")

	// The app logs to stderr, which logs keeps apart, as docker logs does.
	r := w.mustRun(exitOK, "logs", "web")
	if !strings.Contains(r.stderr, "app v2 listening on :8080") || strings.Contains(r.stderr, "app v1") {
		t.Fatalf("logs web printed:\n%s\nwant the live (v2) container's output only", r.stderr)
	}
	// The engine copies a container's output asynchronously: the request
	// line of wantServing may reach the log a moment after the answer.
	waitFor(t, "the request line of wantServing in logs web", 10*time.Second, func() bool {
		r = w.mustRun(exitOK, "logs", "web")
		return strings.Contains(r.stderr, "GET /")
	})
	if r := w.run("logs", "nope"); r.code != exitFailed || !strings.Contains(r.stderr, "has no container") {
		t.Fatalf("logs of an unknown service: exit %d\n%s", r.code, r.stderr)
	}

	// --follow prints new output as it comes and ends with the context.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"logs", "web", "--follow", "--tail", "1", "--env", w.env, "--repo", w.repo.Dir, "--state-dir", w.stateDir}, &testenv.SyncBuffer{}, out)
	}()
	waitFor(t, "the followed log to show new requests", 10*time.Second, func() bool {
		w.get("/")
		return strings.Count(out.String(), "GET /") >= 2
	})
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("logs --follow exit %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs --follow did not end when its context was cancelled")
	}
}

// TestExecSmoke: an exec smoke command runs in the new container after the
// switch; exit 0 keeps the deploy, a non-zero exit rolls it back.
func TestExecSmoke(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	smoke := "    smoke:\n      - exec: [\"/app/server\", \"selftest\"]\n"
	w.commit(spec{image: opsApp(t, "v1"), version: "v1", config: "a: 1\n", webExtra: smoke}, "v1")
	w.mustRun(exitOK, "apply")
	w.wantServing("v1")

	// The self-test fails while /app/config.yaml exists, which it does.
	w.commit(spec{image: opsApp(t, "v2"), version: "v2", config: "a: 1\n", webExtra: smoke,
		webEnv: "      SELFTEST_FAIL_FILE: /app/config.yaml\n"}, "v2 whose self-test fails")
	r := w.run("diff")
	if !strings.Contains(r.stdout, "smoke web/green exec /app/server selftest") {
		t.Fatalf("diff does not show the exec smoke step:\n%s", r.stdout)
	}
	r = w.mustRun(exitFailed, "apply")
	for _, want := range []string{"exited with code 1", "selftest failed", "rolled back"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("apply stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	w.wantServing("v1")
	if names := w.containers(); len(names) != 1 {
		t.Fatalf("containers after the rollback: %v, want only web-blue", names)
	}
}

// TestDiscovery: a client container on the env's network calls the service
// by name before, during and after two blue-green switches without a
// single failure (no retries: one caller opens a new connection per call,
// the other keeps one alive), and after each switch reaches the new
// version only. The name is held by the service's name proxy; the worker
// is on the network under its own name.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true}, "v1")
	w.mustRun(exitOK, "apply")

	nw, err := w.cli.NetworkInspect(ctx, w.env, network.InspectOptions{})
	if err != nil || !nw.Internal {
		t.Fatalf("network %s: internal=%v err=%v, want an internal network", w.env, nw.Internal, err)
	}
	aliases := func(name string) []string {
		t.Helper()
		ci, err := w.cli.ContainerInspect(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ep := ci.NetworkSettings.Networks[w.env]; ep != nil {
			return ep.Aliases
		}
		return nil
	}
	if as := aliases(w.env + "-worker-blue"); !slices.Contains(as, "worker") {
		t.Fatalf("worker's aliases on %s: %v, want worker", w.env, as)
	}
	if as := aliases("reconciler-proxy-" + w.env + "-web"); !slices.Contains(as, "web") {
		t.Fatalf("name proxy's aliases on %s: %v, want web", w.env, as)
	}
	if as := aliases(w.env + "-web-blue"); slices.Contains(as, "web") || !slices.Contains(as, "web-blue") {
		t.Fatalf("web-blue's aliases on %s: %v, want web-blue and not web (the proxy's)", w.env, as)
	}

	logs, stop := w.startFetch("http://web:8080/")
	waitFor(t, "the client to reach web v1 by name", 10*time.Second, func() bool { return strings.Contains(logs(), "fetch version=v1") })

	proxyID, prev := "", "v1"
	for _, next := range []struct{ image, version, color string }{
		{"reconciler-test/app:v2", "v2", "green"},
		{"reconciler-test/app:v1", "v3", "blue"},
	} {
		w.commit(spec{image: next.image, version: next.version, config: "a: 1\n", worker: true}, next.version)
		r := w.mustRun(exitOK, "apply")
		if !strings.Contains(r.stderr, "name web → "+next.color) {
			t.Fatalf("apply did not move the name to %s:\n%s", next.color, r.stderr)
		}
		w.wantServing(next.version)
		after := len(logs())
		waitFor(t, "the client's calls after the deploy", 10*time.Second, func() bool {
			return strings.Count(logs()[after:], "fetch version="+next.version) >= 2 // 25 calls or more
		})
		if strings.Contains(logs()[after:], "version="+prev+" ") {
			t.Fatalf("the client reached %s after deploying %s:\n%s", prev, next.version, logs())
		}
		prev = next.version
		// The proxy holds the name through every deploy: same container.
		ci, err := w.cli.ContainerInspect(ctx, "reconciler-proxy-"+w.env+"-web")
		if err != nil || proxyID != "" && ci.ID != proxyID {
			t.Fatalf("name proxy after deploying %s: %v (id %s, was %s), want the same container", next.version, err, ci.ID, proxyID)
		}
		proxyID = ci.ID
	}

	stop()

	// In sync afterwards: the names are where diff wants them, and status
	// shows where the name points.
	w.mustRun(exitOK, "diff")
	if r := w.mustRun(exitOK, "status"); !strings.Contains(r.stdout, "name web: reconciler-proxy-"+w.env+"-web (running) → blue") {
		t.Fatalf("status does not show the name:\n%s", r.stdout)
	}

	// Drift: the proxy stopped and the marker edited by hand; diff says
	// so, apply repairs both.
	timeout := 1
	if err := w.cli.ContainerStop(ctx, proxyID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.stateDir, "names", w.env, "web"), []byte("green\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "drift: name web points to green, live container is blue") || !strings.Contains(r.stdout, "is exited") {
		t.Fatalf("diff after the name drifted:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	w.mustRun(exitOK, "diff")
	if ci, err := w.cli.ContainerInspect(ctx, proxyID); err != nil || !ci.State.Running {
		t.Fatalf("name proxy after the repair: %v, want the same container running", err)
	}
}

// startFetch starts a client container (not ours; its name puts it under
// the test's cleanup) on the env's network running app fetch url with env
// (KEY=value). logs returns what it wrote so far; stop stops it and fails
// the test unless it ended with a summary and no failed call.
func (w *world) startFetch(url string, env ...string) (logs func() string, stop func()) {
	t := w.t
	t.Helper()
	ctx := context.Background()
	resp, err := w.cli.ContainerCreate(ctx, &container.Config{Image: opsApp(t, "v1"), Cmd: []string{"fetch", url}, Env: env},
		&container.HostConfig{NetworkMode: container.NetworkMode(w.env)}, nil, nil, w.env+"-client")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	logs = func() string {
		rc, err := w.cli.ContainerLogs(ctx, resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var b bytes.Buffer
		_, _ = stdcopy.StdCopy(&b, &b, rc)
		return b.String()
	}
	stop = func() {
		t.Helper()
		timeout := 5
		if err := w.cli.ContainerStop(ctx, resp.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			t.Fatal(err)
		}
		out := logs()
		if !strings.Contains(out, "fetch summary") {
			t.Fatalf("client log:\n%s\nwant it to end with a summary", out)
		}
		if strings.Contains(out, "fetch error") || !strings.Contains(out, " failed=0\n") {
			t.Fatalf("the client saw failures calling by name:\n%s", out)
		}
		t.Logf("client: %s", out[strings.LastIndex(out, "fetch summary"):])
	}
	return logs, stop
}

// TestDiscoveryUnderLoad (RECONCILER_LOAD=1; bench/discovery.sh) is
// TestDiscovery's client with 8 callers calling every millisecond through
// 6 deploys: no call may fail. It takes about a minute.
func TestDiscoveryUnderLoad(t *testing.T) {
	if os.Getenv("RECONCILER_LOAD") != "1" {
		t.Skip("a load run: RECONCILER_LOAD=1 (bench/discovery.sh) runs it")
	}
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true}, "v1")
	w.mustRun(exitOK, "apply")
	logs, stop := w.startFetch("http://web:8080/", "FETCH_CALLERS=8", "FETCH_INTERVAL=1ms")
	waitFor(t, "the client to reach web v1 by name", 10*time.Second, func() bool { return strings.Contains(logs(), "fetch version=v1") })
	for i := 2; i <= 7; i++ {
		img := []string{"reconciler-test/app:v1", "reconciler-test/app:v2"}[i%2]
		v := fmt.Sprintf("v%d", i)
		w.commit(spec{image: img, version: v, config: "a: 1\n", worker: true}, v)
		w.mustRun(exitOK, "apply")
		after := len(logs())
		waitFor(t, "calls after the deploy", 10*time.Second, func() bool { return strings.Contains(logs()[after:], "fetch version="+v) })
	}
	stop()
}

// TestImageRetention: after each deploy, the images beyond the last
// keepImages the service ran are removed, unless a container (ours or not)
// uses them; prune --dry-run and apply say what they free.
func TestImageRetention(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	ref := func(n int) string { return fmt.Sprintf("reconciler-test/ret-%s:v%d", w.env, n) }
	size := map[int]int64{}
	for n := 1; n <= 4; n++ {
		// Unique content per test and version: no layer is shared.
		id := testenv.AppImageVariant(t, ref(n), fmt.Sprintf("%s-v%d", w.env, n))
		img, err := w.cli.ImageInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		size[n] = img.Size
		t.Cleanup(func() {
			// Before the world's own cleanup: the live container still
			// runs one of these images.
			ctx := context.Background()
			if list, err := w.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("ancestor", id))}); err == nil {
				for _, c := range list {
					_ = w.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
				}
			}
			_, _ = w.cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true})
		})
	}
	present := func(n int) bool {
		_, err := w.cli.ImageInspect(ctx, ref(n))
		return err == nil
	}
	deploy := func(n int) result {
		w.commit(spec{image: ref(n), version: fmt.Sprintf("v%d", n), config: "a: 1\n", top: "keepImages: 2\n"}, fmt.Sprintf("v%d", n))
		return w.mustRun(exitOK, "apply")
	}
	deploy(1)
	deploy(2)

	// A container that is not ours uses v1: it stays.
	foreign, err := w.cli.ContainerCreate(ctx, &container.Config{Image: ref(1)}, nil, nil, nil, w.env+"-foreign")
	if err != nil {
		t.Fatal(err)
	}
	deploy(3)
	if !present(1) || !present(2) || !present(3) {
		t.Fatalf("after v3 with a foreign container on v1: v1 %v v2 %v v3 %v, want all kept", present(1), present(2), present(3))
	}
	if r := w.mustRun(exitOK, "prune", "--dry-run"); !strings.Contains(r.stdout, "images: would remove 0") {
		t.Fatalf("prune --dry-run:\n%s", r.stdout)
	}
	if err := w.cli.ContainerRemove(ctx, foreign.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	r := w.mustRun(exitOK, "prune", "--dry-run")
	if want := fmt.Sprintf("would remove %s (", ref(1)); !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "would free "+state.HumanBytes(size[1])) {
		t.Fatalf("prune --dry-run:\n%s\nwant %q and %s freed", r.stdout, want, state.HumanBytes(size[1]))
	}
	if !present(1) {
		t.Fatal("prune --dry-run removed v1")
	}

	// v4: the last two the service ran are v4 and v3; v1 and v2 go.
	r = deploy(4)
	if !strings.Contains(r.stdout, "images: removed 2, freed "+state.HumanBytes(size[1]+size[2])) {
		t.Fatalf("apply v4 output:\n%s\nwant 2 images removed, %s freed", r.stdout, state.HumanBytes(size[1]+size[2]))
	}
	if present(1) || present(2) || !present(3) || !present(4) {
		t.Fatalf("after v4: v1 %v v2 %v v3 %v v4 %v, want only v3 and v4", present(1), present(2), present(3), present(4))
	}
	// git revert to v3 needs no pull.
	r = deploy(3)
	if strings.Contains(r.stdout, "pull") {
		t.Fatalf("revert to v3 pulled:\n%s", r.stdout)
	}
	w.wantServing("v3")
}

// TestMigrationsDryRun: diff says whether and why the migrations run; check
// runs migrations.dryRun.command when they would, and fails when it fails.
func TestMigrationsDryRun(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	opsApp(t, "v1")
	mig := func(dry string) string {
		return "  image: reconciler-test/ops-app:v1\n  command: [\"migrate\"]\n  env:\n    SELFTEST_FAIL_FILE: /app/server\n  dryRun:\n    command: " + dry + "\n"
	}
	// The self-test fails: /app/server exists.
	w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig(`["selftest"]`)}, "v1, dry-run fails")
	r := w.mustRun(exitChanges, "diff")
	if !strings.Contains(r.stdout, "run at this commit: never ran on this host") {
		t.Fatalf("diff does not say why the migrations run:\n%s", r.stdout)
	}
	r = w.mustRun(exitFailed, "check")
	if !strings.Contains(r.stdout, "migrations dry-run") || !strings.Contains(r.stdout, "exited with code 1") || !strings.Contains(r.stdout, "selftest failed") {
		t.Fatalf("check:\n%s\n%s", r.stdout, r.stderr)
	}
	if names := w.containers(); len(names) != 0 {
		t.Fatalf("check left containers: %v", names)
	}

	w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig(`["migrate", "--dry-run"]`)}, "v1, dry-run passes")
	r = w.mustRun(exitOK, "check")
	if !strings.Contains(r.stdout, `["migrate" "--dry-run"] exited 0`) {
		t.Fatalf("check:\n%s", r.stdout)
	}
	w.mustRun(exitOK, "apply")
	r = w.mustRun(exitOK, "diff")
	if !strings.Contains(r.stdout, "migrations: do not run at this commit") {
		t.Fatalf("diff after the run:\n%s", r.stdout)
	}
	if r = w.mustRun(exitOK, "check"); !strings.Contains(r.stdout, "skipped: the migrations do not run at this commit") {
		t.Fatalf("check after the run:\n%s", r.stdout)
	}
}

// TestResourceMetrics: the agent's /metrics has each container's memory,
// limit, CPU, restarts and health; a worker made to restart shows it, and
// status shows memory used against the limit.
func TestResourceMetrics(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.commit(spec{version: "v1", config: "a: 1\n", worker: true, workerEnv: "      CRASH_AFTER: 2s\n"}, "v1, a worker that crashes every 2s")
	a := w.startAgent("file://"+w.repo.Bare(), "--interval", "1s", "--no-heal")
	waitFor(t, "v1 served", 20*time.Second, func() bool { return w.serving("v1") })

	series := func(name, svc string) string {
		return fmt.Sprintf(`%s{color="blue",env=%q,service=%q}`, name, w.env, svc)
	}
	waitFor(t, "the worker's restarts in /metrics", 20*time.Second, func() bool {
		return metric(t, a.addr, series("reconciler_container_restarts_total", "worker")) >= 1
	})
	if got := metric(t, a.addr, series("reconciler_container_memory_limit_bytes", "web")); got != 64<<20 {
		t.Fatalf("web memory limit = %v, want %d", got, 64<<20)
	}
	if got := metric(t, a.addr, series("reconciler_container_memory_bytes", "web")); got <= 0 || got > 64<<20 {
		t.Fatalf("web memory = %v, want above 0 and within the limit", got)
	}
	if got := metric(t, a.addr, series("reconciler_container_healthy", "web")); got != 1 {
		t.Fatalf("web healthy = %v, want 1", got)
	}
	waitFor(t, "web's CPU seconds in /metrics", 10*time.Second, func() bool {
		return metric(t, a.addr, series("reconciler_container_cpu_seconds_total", "web")) > 0
	})

	r := w.mustRun(exitOK, "status")
	if !strings.Contains(r.stdout, "MEMORY") || !strings.Contains(r.stdout, " / 64.0 MB") {
		t.Fatalf("status:\n%s\nwant a MEMORY column with used / 64.0 MB", r.stdout)
	}
}

// TestSnapshotAndRoute53: the RDS snapshot and the Route 53 calls go through
// the real SDK to a fake on loopback. A failed snapshot stops the deploy
// before the migrations; a good one is waited for, and its id is in the
// notification. After the switch the health check gets the service's path
// and port; a failed update is reported and the deploy stands. Not
// parallel: it sets the AWS variables of the process.
func TestSnapshotAndRoute53(t *testing.T) {
	fake := testenv.FakeAWS(t)
	fake.Setenv(t)
	fake.SetRDSInstance("mcp-db", true) // its snapshots fail
	fake.SetHealthCheck("hc-1", "/old", 80)
	var mu sync.Mutex
	var events []reconciler.Event
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e reconciler.Event
		_ = json.NewDecoder(r.Body).Decode(&e)
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	w := newWorld(t)
	mig := "  image: reconciler-test/app:v1\n  command: [\"migrate\"]\n  snapshot:\n    rdsInstance: mcp-db\n"
	r53 := "    route53:\n      healthCheckId: hc-1\n"
	top := "notify:\n  - url: " + hook.URL + "/hook\n    events: [deploy.succeeded, migration.failed]\n"
	first := w.commit(spec{version: "v1", config: "a: 1\n", migrations: mig, webExtra: r53, top: top}, "v1")
	r := w.mustRun(exitFailed, "apply")
	if !strings.Contains(r.stderr, `is "failed", not available`) || !strings.Contains(r.stderr, "the migrations did not run") || strings.Contains(r.stdout, "migrating") {
		t.Fatalf("apply with a failing snapshot:\n%s\n%s", r.stdout, r.stderr)
	}
	if names := w.containers(); len(names) != 0 {
		t.Fatalf("containers after a failed snapshot: %v", names)
	}

	fake.SetRDSInstance("mcp-db", false)
	commit := w.commit(spec{version: "v1", config: "a: 2\n", migrations: mig, webExtra: r53, top: top}, "v1 again")
	r = w.mustRun(exitOK, "apply")
	id := reconciler.SnapshotID(w.env, commit)
	if !strings.Contains(r.stdout, "migrating") || !slices.Contains(fake.Snapshots(), id) {
		t.Fatalf("apply: snapshots %v, want %s; output:\n%s", fake.Snapshots(), id, r.stdout)
	}
	if got := fake.HealthCheck("hc-1"); got.Path != "/health" || got.Port != w.port {
		t.Fatalf("health check after the switch: %+v, want /health on port %d", got, w.port)
	}
	mu.Lock()
	var got []string
	for _, e := range events {
		got = append(got, string(e.Name)+":"+e.Snapshot)
	}
	mu.Unlock()
	want := []string{"migration.failed:" + reconciler.SnapshotID(w.env, first), "deploy.succeeded:" + id}
	if !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}

	// A health check that does not exist: reported, and v2 stays.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 2\n", migrations: mig,
		webExtra: "    route53:\n      healthCheckId: hc-nope\n", top: top}, "v2")
	r = w.mustRun(exitOK, "apply")
	if !strings.Contains(r.stdout, "warning: health-check route53 web") || !strings.Contains(r.stdout, "NoSuchHealthCheck") {
		t.Fatalf("apply v2 output:\n%s", r.stdout)
	}
	w.wantServing("v2")
}
