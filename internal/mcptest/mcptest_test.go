package mcptest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// swap serves the current server; replacing it forgets every session,
// as a new color does.
type swap struct{ cur atomic.Pointer[Server] }

func (s *swap) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.cur.Load().ServeHTTP(w, r) }

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientCountsAndRecovers: the client's calls and stream work; a server
// that forgets the session gives one 404 and a new session; a stream the
// server ends is a break; one the client closes is not.
func TestClientCountsAndRecovers(t *testing.T) {
	h := &swap{}
	h.cur.Store(NewServer("v1"))
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := &Client{URL: ts.URL, CallEvery: 10 * time.Millisecond}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	waitUntil(t, "calls and events on v1", func() bool { k := c.Counts(); return k.OK >= 3 && k.Events >= 2 })

	h.cur.Store(NewServer("v2"))
	ts.CloseClientConnections() // the old server's stream ends
	waitUntil(t, "calls on v2", func() bool {
		a := c.Answers()
		return a[len(a)-1].Version == "v2"
	})
	waitUntil(t, "the stream open again", c.StreamUp)
	c.CloseStream()
	waitUntil(t, "the stream closed", func() bool { return !c.StreamUp() })
	k := c.Stop()
	if k.NotFound < 1 || k.Inits != 2 || k.StreamBreaks != 1 {
		t.Errorf("counts %+v: want a 404, two sessions and one stream break", k)
	}
}

// TestServerRejects: no session, an unknown one, and a stream without the
// event-stream Accept header.
func TestServerRejects(t *testing.T) {
	ts := httptest.NewServer(NewServer("v1"))
	defer ts.Close()
	for _, tc := range []struct {
		method, session, accept string
		want                    int
	}{
		{http.MethodPost, "", "", http.StatusBadRequest},
		{http.MethodPost, "nope", "", http.StatusNotFound},
		{http.MethodGet, "nope", "text/event-stream", http.StatusNotFound},
		{http.MethodGet, "nope", "application/json", http.StatusNotAcceptable},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+Path, nil)
		if tc.method == http.MethodPost {
			req, _ = http.NewRequest(tc.method, ts.URL+Path, stringsReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`))
		}
		if tc.session != "" {
			req.Header.Set(SessionHeader, tc.session)
		}
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s session %q accept %q: %d, want %d", tc.method, tc.session, tc.accept, resp.StatusCode, tc.want)
		}
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
