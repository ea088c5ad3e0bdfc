package templates

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

func TestRedirectListen(t *testing.T) {
	tls := &state.TLS{Certificate: "/c", Key: "/k"}
	tests := []struct {
		listen, serverName string
		tls                *state.TLS
		want, wantPort     string
	}{
		{"443 ssl", "a.io", tls, "80", ""},
		{"443 ssl http2", "a.io", tls, "80", ""},
		{"10.0.0.1:443 ssl", "a.io", tls, "10.0.0.1:80", ""},
		{"[::]:443 ssl", "a.io", tls, "[::]:80", ""},
		{"8443 ssl", "a.io", tls, "80", ":8443"},
		{"443 ssl", "", tls, "", ""}, // no name: port 80 is not ours to claim
		{"443", "a.io", nil, "", ""}, // not TLS
		{"80 ssl", "a.io", tls, "", ""},
		// An address without a port ("10.0.0.1 ssl") and a unix socket
		// are not a state.Listen: ParseListen rejects them (see its test).
	}
	for _, tc := range tests {
		got, port := redirectListen(SiteParams{Listen: listen(tc.listen), ServerName: tc.serverName, TLS: tc.tls})
		if got != tc.want || port != tc.wantPort {
			t.Errorf("redirectListen(%q, %q) = %q %q, want %q %q", tc.listen, tc.serverName, got, port, tc.want, tc.wantPort)
		}
	}
}

// TestTLSSitesCoexist loads the TLS sites of the real layout together
// (two services on 443 of one env, another env on 8443): the per-site
// WebSocket maps and the port-80 redirect servers must not collide.
func TestTLSSitesCoexist(t *testing.T) {
	n := testenv.StartNginx(t)
	certDir := t.TempDir()
	sites := []struct{ env, service, listen, name string }{
		{"prod", "mcp-server", "443 ssl", "mcp.dev-mesh.io"},
		{"prod", "rest-api", "443 ssl", "api.dev-mesh.io"},
		{"staging", "mcp-server", "8443 ssl", "staging.mcp.dev-mesh.io"},
		{"dev", "mcp-server", "127.0.0.1:8080", "dev.mcp.dev-mesh.io"},
	}
	for i, s := range sites {
		writeSelfSigned(t, certDir, s.name)
		p := SiteParams{Env: s.env, Service: s.service, ConfDir: n.ConfDir,
			BluePort: 23000 + 2*i, GreenPort: 23001 + 2*i, Listen: listen(s.listen), ServerName: s.name}
		if strings.Contains(s.listen, "ssl") {
			p.TLS = &state.TLS{Certificate: filepath.Join(certDir, s.name+".crt"), Key: filepath.Join(certDir, s.name+".key")}
		}
		writeSite(t, n, p)
	}
	nginxAccepts(t, n)
}

// TestStreamingThroughNginx sends a server-sent event stream and a WebSocket
// upgrade through a rendered site on a real nginx: events must arrive while
// the response is still open, the upgrade must reach the upstream, and plain
// requests must keep reusing upstream connections. (nginx 1.22 passes small
// events on even with proxy_buffering on, so the golden file, not this test,
// is what pins "proxy_buffering off"; this test fails when the WebSocket map
// or the keep-alive Connection header break.)
func TestStreamingThroughNginx(t *testing.T) {
	n := testenv.StartNginx(t)
	release := make(chan struct{})
	var conns = make(chan string, 100)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/sse":
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: first\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
				}
				fmt.Fprint(w, "data: last\n\n")
			case "/ws":
				if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
					http.Error(w, "no upgrade: Upgrade="+r.Header.Get("Upgrade")+" Connection="+r.Header.Get("Connection"), 400)
					return
				}
				c, rw, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				defer c.Close()
				fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
				rw.Flush()
				line, _ := rw.ReadString('\n')
				fmt.Fprint(rw, "echo "+line)
				rw.Flush()
			default:
				conns <- r.RemoteAddr
				fmt.Fprintf(w, "connection header %q\n", r.Header.Get("Connection"))
			}
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Close() })

	port := testenv.FreePort(t)
	up := ln.Addr().(*net.TCPAddr).Port
	content, err := Site(SiteParams{Env: "stream", Service: "mcp", ConfDir: n.ConfDir,
		BluePort: up, GreenPort: up + 1, Listen: listen(fmt.Sprintf("127.0.0.1:%d", port))})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, "stream-mcp.conf"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", n.Test+" && "+n.Reload).CombinedOutput(); err != nil {
		t.Fatalf("nginx reload: %v\n%s", err, out)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The reload takes effect asynchronously: poll until the site answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/plain")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("site did not answer after reload: %v%s", err, n.ErrorLog())
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("sse is not buffered", func(t *testing.T) {
		resp, err := http.Get(base + "/sse")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if line != "data: first\n" {
				t.Errorf("first line = %q", line)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the first event did not arrive while the stream was open: nginx buffers it")
		}
	})

	t.Run("websocket upgrade", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		r := bufio.NewReader(c)
		status, _ := r.ReadString('\n')
		if !strings.HasPrefix(status, "HTTP/1.1 101") {
			rest := make([]byte, 512)
			k, _ := r.Read(rest)
			t.Fatalf("status %q, want 101\n%s", status, rest[:k])
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		fmt.Fprint(c, "hello\n")
		if l, _ := r.ReadString('\n'); l != "echo hello\n" {
			t.Errorf("through the upgraded connection: %q", l)
		}
	})

	t.Run("keep-alive to the upstream", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 5; i++ {
			resp, err := http.Get(base + "/plain")
			if err != nil {
				t.Fatal(err)
			}
			body := make([]byte, 100)
			k, _ := resp.Body.Read(body)
			resp.Body.Close()
			if !strings.Contains(string(body[:k]), `connection header ""`) {
				t.Errorf("upstream saw %s", body[:k])
			}
			seen[<-conns] = true
		}
		if len(seen) == 5 {
			t.Errorf("every request used a new upstream connection: keep-alive is off")
		}
	})
}
