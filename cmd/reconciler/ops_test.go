package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

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
	if !strings.Contains(r.stderr, "GET /") {
		t.Fatalf("logs web lacks the request line of wantServing:\n%s", r.stderr)
	}
	if r := w.run("logs", "nope"); r.code != exitFailed || !strings.Contains(r.stderr, "has no container") {
		t.Fatalf("logs of an unknown service: exit %d\n%s", r.code, r.stderr)
	}

	// --follow prints new output as it comes and ends with the context.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"logs", "web", "--follow", "--tail", "1", "--env", w.env, "--repo", w.repo.Dir, "--state-dir", w.stateDir}, &syncBuffer{}, out)
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
	w.commit(spec{version: "v1", config: "a: 1\n", webExtra: smoke}, "v1")
	w.mustRun(exitOK, "apply")
	w.wantServing("v1")

	// The self-test fails while /app/config.yaml exists, which it does.
	w.commit(spec{image: "reconciler-test/app:v2", version: "v2", config: "a: 1\n", webExtra: smoke,
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
