package templates

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

// sessionColor is one color of a test site: it knows some sessions,
// answers 404 to others, and records what reached it.
type sessionColor struct {
	name     string
	sessions map[string]bool
	mu       sync.Mutex
	got      []string // "METHOD session body"
}

func (c *sessionColor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("Mcp-Session-Id")
	c.mu.Lock()
	c.got = append(c.got, r.Method+" "+id+" "+string(body))
	c.mu.Unlock()
	if id != "" && !c.sessions[id] {
		http.Error(w, "unknown session", http.StatusNotFound)
		return
	}
	fmt.Fprintf(w, "%s %s", c.name, body)
}

func (c *sessionColor) calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func (c *sessionColor) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = nil
}

// TestSessionPinningThroughNginx runs the session pinning of a site with a
// session header on a real nginx, green live and blue draining: a request
// on one of blue's sessions that green answers 404 is sent again, POST
// body and all, to blue while the drain marker exists, and gets green's
// 404 once it is gone; requests without the header and on green's
// sessions never reach blue.
func TestSessionPinningThroughNginx(t *testing.T) {
	n := testenv.StartNginx(t)
	blue := &sessionColor{name: "blue", sessions: map[string]bool{"old": true}}
	green := &sessionColor{name: "green", sessions: map[string]bool{"new": true}}
	ports := map[string]int{}
	for _, c := range []*sessionColor{blue, green} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: c}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		ports[c.name] = ln.Addr().(*net.TCPAddr).Port
	}
	port := testenv.FreePort(t)
	content, err := Site(SiteParams{Env: "i19pin", Service: "mcp", ConfDir: n.ConfDir,
		BluePort: ports["blue"], GreenPort: ports["green"], Listen: listen(fmt.Sprintf("127.0.0.1:%d", port)),
		SessionHeader: "Mcp-Session-Id"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(n.ConfDir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(state.SiteFile("i19pin", "mcp"), string(content))
	write(state.MarkerFile("i19pin", "mcp"), "green\n")
	if out, err := exec.Command("sh", "-c", n.Test+" && "+n.Reload).CombinedOutput(); err != nil {
		t.Fatalf("nginx reload: %v\n%s", err, out)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	try := func(method, session, body string) (int, string, error) {
		req, _ := http.NewRequest(method, base+"/mcp", strings.NewReader(body))
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	send := func(method, session, body string) (int, string) {
		t.Helper()
		code, b, err := try(method, session, body)
		if err != nil {
			t.Fatal(err)
		}
		return code, b
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, body, err := try("GET", "", ""); err == nil && code == 200 && strings.HasPrefix(body, "green") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("site does not route to green after the reload%s", n.ErrorLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	drain := filepath.Join(n.ConfDir, state.DrainMarkerFile("i19pin", "mcp"))

	// No drain: the old session gets the live color's 404.
	blue.reset()
	if code, _ := send("POST", "old", "call-1"); code != 404 {
		t.Fatalf("old session without a drain: status %d, want green's 404", code)
	}
	if got := blue.calls(); len(got) != 0 {
		t.Fatalf("blue got %q without a drain", got)
	}

	write(filepath.Base(drain), "draining\n")
	cases := []struct {
		name, method, session, body string
		wantCode                    int
		wantBody                    string
		wantBlue                    []string
	}{
		{"old session POST goes to blue with its body", "POST", "old", `{"jsonrpc":"2.0","id":7,"method":"tools/call"}`, 200,
			`blue {"jsonrpc":"2.0","id":7,"method":"tools/call"}`, []string{`POST old {"jsonrpc":"2.0","id":7,"method":"tools/call"}`}},
		{"old session GET goes to blue", "GET", "old", "", 200, "blue ", []string{"GET old "}},
		{"new session stays on green", "POST", "new", "call", 200, "green call", nil},
		{"no session (initialize) stays on green", "POST", "", "init", 200, "green init", nil},
		{"session neither knows gets 404", "POST", "gone", "x", 404, "unknown session\n", []string{"POST gone x"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blue.reset()
			green.reset()
			code, body := send(tc.method, tc.session, tc.body)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
			if got := blue.calls(); strings.Join(got, "|") != strings.Join(tc.wantBlue, "|") {
				t.Errorf("blue got %q, want %q", got, tc.wantBlue)
			}
			if got := green.calls(); len(got) != 1 {
				t.Errorf("green got %q, want the request once", got)
			}
		})
	}

	// After the drain, the old session gets green's 404 again.
	if err := os.Remove(drain); err != nil {
		t.Fatal(err)
	}
	blue.reset()
	if code, _ := send("POST", "old", "late"); code != 404 {
		t.Fatalf("old session after the drain: status %d, want 404", code)
	}
	if got := blue.calls(); len(got) != 0 {
		t.Fatalf("blue got %q after the drain", got)
	}
}
