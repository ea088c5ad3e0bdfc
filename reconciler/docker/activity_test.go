package docker_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/mcptest"
	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// TestActivity measures an MCP server container from the host while a
// client uses it: idle with no connection, busy and open with a stream,
// busy then idle (but connected) with a kept-alive connection that stops
// sending, and nothing once every connection closed.
func TestActivity(t *testing.T) {
	t.Parallel()
	rt, _, env := setup(t)
	const ref = "reconciler-test/i19-mcp:v1"
	testenv.MCPImage(t, ref, "v1")
	ctx := context.Background()
	port := testenv.FreePort(t)
	cs := serviceSpec(env, "mcp", state.Blue, port, state.Spec{Image: ref, Env: map[string]string{"VERSION": "v1"}, ContainerPort: 8080})
	if err := rt.Start(ctx, cs); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitHealthy(t, port)
	const idle = 500 * time.Millisecond
	want := func(what string, ok func(reconciler.Activity) bool) {
		t.Helper()
		var last reconciler.Activity
		eventually(t, 10*time.Second, func() error {
			a, err := rt.Activity(ctx, cs.Name, 8080, idle)
			if err != nil {
				return err
			}
			last = a
			if !ok(a) {
				return fmt.Errorf("activity %+v, want %s", a, what)
			}
			return nil
		})
		t.Logf("%s: %+v", what, last)
	}
	// The health checks' kept-alive connection may still be there.
	want("idle", func(a reconciler.Activity) bool { return a.Busy == 0 && a.Open == 0 })
	http.DefaultClient.CloseIdleConnections()

	// A kept-alive connection that carried a call: busy, then idle.
	c := &mcptest.Client{URL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	resp, err := hc.Post(c.URL+mcptest.Path, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	session := resp.Header.Get(mcptest.SessionHeader)
	want("one busy kept-alive connection", func(a reconciler.Activity) bool { return a.Conns >= 1 && a.Busy == 1 })
	want("one idle kept-alive connection", func(a reconciler.Activity) bool { return a.Conns >= 1 && a.Busy == 0 && a.Open == 0 })

	// A stream: busy, and open once it outlived StreamAge.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, c.URL+mcptest.Path, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(mcptest.SessionHeader, session)
	sresp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil || sresp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", sresp, err)
	}
	go io.Copy(io.Discard, bufio.NewReader(sresp.Body))
	want("an open stream", func(a reconciler.Activity) bool { return a.Conns >= 2 && a.Busy == 1 && a.Open == 1 })
	stop()
	sresp.Body.Close()
	tr.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	want("no connection after both closed", func(a reconciler.Activity) bool { return a == reconciler.Activity{} })

	if _, err := rt.Activity(ctx, env+"-none", 8080, idle); err == nil {
		t.Error("activity of a missing container: no error")
	}
}
