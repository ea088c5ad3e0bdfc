package nameproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
)

func backend(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s", name, r.Host)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestProxyFollowsMarker: requests go to the color the marker names, the
// switch applies to the next request on a kept-alive connection, and no
// request fails while the marker flips back and forth under load.
func TestProxyFollowsMarker(t *testing.T) {
	dir := t.TempDir()
	blue, green := backend(t, "blue"), backend(t, "green")
	p := &Proxy{Service: "web", Port: 8080, Marker: MarkerPath(dir, "web"), Upstream: func(c string) string {
		if c == "blue" {
			return strings.TrimPrefix(blue.URL, "http://")
		}
		return strings.TrimPrefix(green.URL, "http://")
	}}
	front := httptest.NewServer(p.Handler())
	defer front.Close()

	get := func(c *http.Client) (string, int, error) {
		resp, err := c.Get(front.URL + "/x")
		if err != nil {
			return "", 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode, err
	}
	if body, code, _ := get(http.DefaultClient); code != http.StatusServiceUnavailable || !strings.Contains(body, "no live color") {
		t.Fatalf("without a marker: %d %q, want 503 naming the missing color", code, body)
	}
	if err := WriteColor(dir, "web", "blue"); err != nil {
		t.Fatal(err)
	}
	body, code, err := get(http.DefaultClient)
	if err != nil || code != 200 || !strings.HasPrefix(body, "blue host="+strings.TrimPrefix(front.URL, "http://")) {
		t.Fatalf("blue: %d %q %v, want blue with the client's Host", code, body, err)
	}

	var failed, done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 2 * time.Second} // keep-alive
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, code, err := get(c); err != nil || code != 200 {
					failed.Add(1)
				}
				done.Add(1)
			}
		}()
	}
	for i := 0; i < 50; i++ {
		c := state.Green
		if i%2 == 1 {
			c = state.Blue
		}
		if err := WriteColor(dir, "web", c); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := WriteColor(dir, "web", "green"); err != nil {
		t.Fatal(err)
	}
	// The next request on the same (kept-alive) connection goes to green.
	c := &http.Client{}
	if body, _, _ := get(c); !strings.HasPrefix(body, "green") {
		t.Fatalf("after the switch: %q, want green", body)
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || done.Load() < 50 {
		t.Fatalf("%d of %d requests failed while the marker flipped", failed.Load(), done.Load())
	}
	t.Logf("%d requests through 51 switches, none failed", done.Load())

	if err := os.WriteFile(MarkerPath(dir, "web"), []byte("purple\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if body, code, _ := get(c); code != http.StatusServiceUnavailable || !strings.Contains(body, "want blue or green") {
		t.Fatalf("bad marker: %d %q", code, body)
	}
}

func TestWriteReadColors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "names", "prod")
	if got, err := ReadColors(dir); err != nil || len(got) != 0 {
		t.Fatalf("missing dir: %v %v", got, err)
	}
	for svc, c := range map[string]state.Color{"web": state.Green, "api": state.Blue} {
		if err := WriteColor(dir, svc, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadColors(dir)
	if err != nil || len(got) != 2 || got["web"] != "green" || got["api"] != "blue" {
		t.Fatalf("ReadColors: %v %v", got, err)
	}
	if err := WriteColor(dir, "web", ""); err != nil {
		t.Fatal(err)
	}
	if err := WriteColor(dir, "web", ""); err != nil {
		t.Fatalf("removing a missing marker: %v", err)
	}
	if got, _ := ReadColors(dir); len(got) != 1 {
		t.Fatalf("after removal: %v", got)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Fatalf("temp file left behind: %s", e.Name())
		}
	}
}

// BenchmarkHop measures what the name proxy adds to a call: the same GET
// on a kept-alive connection, straight to the backend (the baseline, in
// the same run) and through the proxy, marker read included.
func BenchmarkHop(b *testing.B) {
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "version=v1")
	}))
	defer back.Close()
	dir := b.TempDir()
	if err := WriteColor(dir, "web", "blue"); err != nil {
		b.Fatal(err)
	}
	p := &Proxy{Service: "web", Port: 8080, Marker: MarkerPath(dir, "web"),
		Upstream: func(string) string { return strings.TrimPrefix(back.URL, "http://") }}
	front := httptest.NewServer(p.Handler())
	defer front.Close()
	for _, tc := range []struct{ name, url string }{{"direct", back.URL}, {"proxy", front.URL}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(tc.url + "/")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// TestProxyStreamsAndUpgrades: an event the backend flushes reaches the
// client while the response is still open (server-sent events), and a
// connection upgrade (101, as WebSocket uses) is passed through both ways.
func TestProxyStreamsAndUpgrades(t *testing.T) {
	release := make(chan struct{})
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release
			_, _ = io.WriteString(w, "data: last\n\n")
		case "/upgrade":
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
				return
			}
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			_ = rw.Flush()
			line, _ := rw.ReadString('\n')
			_, _ = rw.WriteString("echo " + line)
			_ = rw.Flush()
		}
	}))
	defer back.Close()
	defer close(release)
	dir := t.TempDir()
	if err := WriteColor(dir, "mcp", "green"); err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Service: "mcp", Port: 8080, Marker: MarkerPath(dir, "mcp"),
		Upstream: func(string) string { return strings.TrimPrefix(back.URL, "http://") }}
	front := httptest.NewServer(p.Handler())
	defer front.Close()

	resp, err := http.Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := resp.Body.Read(b)
		got <- string(b[:n])
	}()
	select {
	case s := <-got:
		if !strings.Contains(s, "data: first") {
			t.Fatalf("first event: %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first event did not come through while the response was open")
	}

	req, _ := http.NewRequest(http.MethodGet, front.URL+"/upgrade", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	up, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Body.Close()
	if up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: status %d, want 101", up.StatusCode)
	}
	rwc, ok := up.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("upgraded body %T is not a connection", up.Body)
	}
	if _, err := io.WriteString(rwc, "hello\n"); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	n, _ := io.ReadAtLeast(rwc, b, len("echo hello\n"))
	if string(b[:n]) != "echo hello\n" {
		t.Fatalf("through the upgraded connection: %q", b[:n])
	}
}

// TestProxyNotLiveAnswersAtOnce: when no color of the service is live (no
// marker; the marked color's name does not resolve; its port refuses),
// the proxy answers 503 with Retry-After instead of holding the call or
// answering 502, and a name that did not resolve is not looked up again
// for RetryAfter, so the calls behind the first are answered at once.
func TestProxyNotLiveAnswersAtOnce(t *testing.T) {
	dir := t.TempDir()
	good := backend(t, "green")
	_, goodPort, _ := strings.Cut(strings.TrimPrefix(good.URL, "http://"), ":")
	closed := httptest.NewServer(http.NotFoundHandler())
	refused := strings.TrimPrefix(closed.URL, "http://")
	closed.Close() // nothing listens there any more: connections are refused

	var lookups atomic.Int64
	p := &Proxy{Service: "web", Port: 8080, Marker: MarkerPath(dir, "web"),
		Upstream: func(c string) string {
			switch c {
			case "blue":
				return "web-blue:" + goodPort // gone: its name does not resolve
			case "green":
				return "web-green:" + goodPort
			}
			return ""
		},
		Lookup: func(ctx context.Context, host string) ([]string, error) {
			lookups.Add(1)
			if host == "web-green" {
				return []string{"127.0.0.1"}, nil
			}
			// What Docker's embedded DNS does with a name it does not
			// know on an internal network: no answer until the deadline.
			<-ctx.Done()
			return nil, ctx.Err()
		}}
	front := httptest.NewServer(p.Handler())
	defer front.Close()
	get := func() (int, string, string) {
		t.Helper()
		resp, err := http.Get(front.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
	}
	want503 := func(what, inBody string) {
		t.Helper()
		code, retry, body := get()
		if code != http.StatusServiceUnavailable || retry != "1" || !strings.Contains(body, inBody) {
			t.Fatalf("%s: %d Retry-After=%q %q, want 503, Retry-After: 1 and %q", what, code, retry, body, inBody)
		}
	}

	want503("no marker", "no live color yet")

	if err := WriteColor(dir, "web", state.Blue); err != nil {
		t.Fatal(err)
	}
	want503("marked color does not resolve", "web-blue does not resolve")
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
	for i := 0; i < 5; i++ {
		want503("marked color did not resolve a moment ago", "did not resolve less than 1s ago")
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups after 6 calls, want still 1: the calls behind the first must not wait for a lookup", n)
	}

	// The switch to a live color applies to the next call.
	if err := WriteColor(dir, "web", state.Green); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get(); code != 200 || !strings.HasPrefix(body, "green") {
		t.Fatalf("after the switch to green: %d %q", code, body)
	}

	// A color whose port refuses connections is not live either.
	p2 := &Proxy{Service: "web", Port: 8080, Marker: MarkerPath(dir, "web"), Upstream: func(string) string { return refused }}
	front2 := httptest.NewServer(p2.Handler())
	defer front2.Close()
	resp, err := http.Get(front2.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(b), "refused") {
		t.Fatalf("refused: %d Retry-After=%q %q, want 503 with Retry-After: 1", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
