package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/mcptest"
	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler/history"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
)

// TestMCPSessionsSurviveDeploy deploys an MCP server v1 → v2 through nginx
// under two clients: one calls a tool every 50ms on its session and holds a
// stream it closes during the drain, the other only holds a stream. The
// drain (deadline 4s, idle 1s) cannot end early: the session is in use.
// During it, every call of the old session is answered by v1 (pinned) and
// none fails; the first stream stays up until its client closes it; the
// second is cut at the deadline, and the deploy reports it. After the
// drain, the old session gets one 404 and the client starts a new session
// on v2. A second deploy with nobody connected drains as soon as it probes.
func TestMCPSessionsSurviveDeploy(t *testing.T) {
	w := newWorld(t)
	v1, v2 := "reconciler-test/i19-mcp:v1", "reconciler-test/i19-mcp:v2"
	testenv.MCPImage(t, v1, "v1")
	testenv.MCPImage(t, v2, "v2")
	extra := "    mcp: true\n    drainIdle: 1s\n"
	w.commit(spec{image: v1, version: "v1", webExtra: extra, drain: "4s"}, "mcp v1")
	w.mustRun(0, "apply")

	base := fmt.Sprintf("http://127.0.0.1:%d", w.port)
	ctx := context.Background()
	caller := &mcptest.Client{URL: base, CallEvery: 50 * time.Millisecond}
	if err := caller.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer caller.Stop()
	streamer := &mcptest.Client{URL: base}
	if err := streamer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer streamer.Stop()
	waitFor(t, "both streams open", 5*time.Second, func() bool { return caller.StreamUp() && streamer.StreamUp() })

	// The moment nginx routes to green, as nginx's route check says.
	var mu sync.Mutex
	var switched time.Time
	var upAtClose bool
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if code, body := w.get("/.reconciler-check/route"); code == 200 && strings.TrimSpace(body) == "green" {
				mu.Lock()
				first := switched.IsZero()
				if first {
					switched = time.Now()
				}
				mu.Unlock()
				if first {
					// Close the first stream a second into the drain,
					// checking it is still up.
					time.AfterFunc(time.Second, func() {
						mu.Lock()
						upAtClose = caller.StreamUp()
						mu.Unlock()
						caller.CloseStream()
					})
				}
			}
		}
	}()
	w.commit(spec{image: v2, version: "v2", webExtra: extra, drain: "4s"}, "mcp v2")
	r := w.mustRun(0, "apply")
	close(done)
	<-watcherDone
	if !strings.Contains(r.stdout, "pin web sessions → blue") || !strings.Contains(r.stdout, "drain web/blue 0s-4s (until idle 1s)") {
		t.Errorf("plan does not show the pin and both bounds of the drain:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "drained web/blue: deadline after") || !strings.Contains(r.stdout, "1 stream(s) cut") {
		t.Errorf("apply does not report the drain's deadline and the cut stream:\n%s", r.stdout)
	}
	waitFor(t, "a call answered by v2 on a new session", 10*time.Second, func() bool {
		a := caller.Answers()
		return len(a) > 0 && a[len(a)-1].Version == "v2"
	})
	waitFor(t, "the cut stream reopened on a new session", 10*time.Second, func() bool { return streamer.StreamUp() })
	got, cut := caller.Stop(), streamer.Stop()
	t.Logf("caller %+v, streamer %+v\n%s", got, cut, r.stdout)

	mu.Lock()
	defer mu.Unlock()
	if switched.IsZero() {
		t.Fatal("nginx never answered green to the route check")
	}
	if !upAtClose {
		t.Error("the first stream was not up a second into the drain")
	}
	if got.Errors != 0 || got.NotFound != 1 || got.Inits != 2 || got.StreamBreaks != 0 {
		t.Errorf("caller saw %+v: want no error, one 404 (after the drain), two sessions, no stream break", got)
	}
	// The calls: v1 (the old session, pinned through the drain), one 404,
	// then v2 on the new session.
	var lastV1 time.Time
	phase := "v1"
	for _, a := range caller.Answers() {
		switch {
		case phase == "v1" && a.Version == "v1":
			lastV1 = a.At
		case phase == "v1" && a.Status == http.StatusNotFound:
			phase = "404"
		case phase == "404" && a.Version == "v2":
			phase = "v2"
		case phase == "v2" && a.Version == "v2":
		default:
			t.Fatalf("call %+v in phase %s: want v1 answers, one 404, then v2 answers", a, phase)
		}
	}
	if phase != "v2" {
		t.Errorf("calls ended in phase %s, want v2", phase)
	}
	if pinned := lastV1.Sub(switched); pinned < 2*time.Second {
		t.Errorf("the old session was answered by v1 only %s after the switch, want it through the 4s drain", pinned)
	}
	if cut.StreamBreaks != 1 || cut.Errors != 0 {
		t.Errorf("streamer saw %+v: want its stream cut once, at the drain's deadline, and no error", cut)
	}
	recs, _, err := history.Read(statedir.HistoryPath(w.stateDir, w.env))
	if err != nil || len(recs) == 0 {
		t.Fatalf("history: %v, %d records", err, len(recs))
	}
	if last := recs[len(recs)-1]; last.StreamsCut < 1 {
		t.Errorf("history record %+v: want the cut stream counted", last)
	}

	// Nobody connected: the drain ends at its first probe.
	w.commit(spec{image: v1, version: "v1", webExtra: extra, drain: "4s"}, "mcp v1 again")
	r = w.mustRun(0, "apply")
	if !strings.Contains(r.stdout, "drained web/green: idle after") {
		t.Errorf("an idle old color was not drained early:\n%s", r.stdout)
	}
}

// TestDrainSeesNginxSessions: an MCP server that closes every connection
// after its answer leaves the host no connection to see between two calls
// of a session; only nginx's access log shows the session in use. A
// client calls the old color every 300ms through its pinned session for
// 2s into the drain, then stops. The drain (deadline 8s, idle 1s) must
// wait while nginx still sends the session's calls to the old color (no
// call gets a 404, every call is answered by v1) and end as idle once
// they stop, before its deadline.
func TestDrainSeesNginxSessions(t *testing.T) {
	w := newWorld(t)
	v1, v2 := "reconciler-test/i19b-mcp:v1", "reconciler-test/i19b-mcp:v2"
	testenv.MCPImage(t, v1, "v1")
	testenv.MCPImage(t, v2, "v2")
	extra := "    mcp: true\n    drainIdle: 1s\n"
	env := "      CLOSE_CONNS: \"1\"\n"
	w.commit(spec{image: v1, version: "v1", webExtra: extra, webEnv: env, drain: "8s"}, "mcp v1")
	w.mustRun(0, "apply")

	caller := &mcptest.Client{URL: fmt.Sprintf("http://127.0.0.1:%d", w.port), CallEvery: 300 * time.Millisecond}
	if err := caller.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer caller.Stop()
	waitFor(t, "the stream open", 5*time.Second, caller.StreamUp)
	// No stream: only the calls use the session.
	caller.CloseStream()
	waitFor(t, "the stream closed", 5*time.Second, func() bool { return !caller.StreamUp() })
	waitFor(t, "a call answered by v1", 5*time.Second, func() bool {
		a := caller.Answers()
		return len(a) > 0 && a[len(a)-1].Version == "v1"
	})

	// Two seconds after nginx routes to green, the client stops.
	stopped := make(chan mcptest.Counts, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if code, body := w.get("/.reconciler-check/route"); code == 200 && strings.TrimSpace(body) == "green" {
				select {
				case <-done:
				case <-time.After(2 * time.Second):
					stopped <- caller.Stop()
				}
				return
			}
		}
	}()
	w.commit(spec{image: v2, version: "v2", webExtra: extra, webEnv: env, drain: "8s"}, "mcp v2")
	r := w.mustRun(0, "apply")
	close(done)
	var got mcptest.Counts
	select {
	case got = <-stopped:
	default:
		t.Fatalf("the drain ended less than 2s after the switch, while the session was in use:\n%s", r.stdout)
	}
	t.Logf("caller %+v\n%s", got, r.stdout)
	if got.NotFound != 0 || got.Errors != 0 || got.Inits != 1 || got.OK < 5 {
		t.Errorf("caller saw %+v: want every call answered on its one session, none 404", got)
	}
	for _, a := range caller.Answers() {
		if a.Version != "v1" {
			t.Errorf("call %+v: want every call of the old session answered by v1", a)
		}
	}
	if !strings.Contains(r.stdout, "drained web/blue: idle after") {
		t.Errorf("the drain did not end as idle once the session stopped:\n%s", r.stdout)
	}
}
