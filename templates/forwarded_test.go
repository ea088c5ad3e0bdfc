package templates

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

// TestForwardedForNotFromClient: nginx is the edge, so the app sees the
// address nginx saw in X-Forwarded-For, never what the client claimed
// (before: "6.6.6.6, 127.0.0.1").
func TestForwardedForNotFromClient(t *testing.T) {
	n := testenv.StartNginx(t)
	var mu sync.Mutex
	var seen []string
	var ports []int
	for range 2 { // blue and green: whichever is live
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, fmt.Sprintf("%q real=%q", r.Header.Values("X-Forwarded-For"), r.Header.Get("X-Real-IP")))
			mu.Unlock()
		}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	port := testenv.FreePort(t)
	listen, err := state.ParseListen(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	site, err := Site(SiteParams{Env: "xff", Service: "web", ConfDir: n.ConfDir,
		BluePort: ports[0], GreenPort: ports[1], Listen: &listen})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, "xff-web.conf"), site, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", n.Test+" && "+n.Reload).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t and reload: %v\n%s", err, out)
	}
	get := func(xff, want string) {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Header.Set("X-Forwarded-For", xff)
		req.Header.Set("X-Real-IP", "6.6.6.6")
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			seen = nil
			mu.Unlock()
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				mu.Lock()
				got := fmt.Sprint(seen)
				mu.Unlock()
				if resp.StatusCode == 200 && got == "["+want+"]" {
					return
				}
				err = fmt.Errorf("status %d, the app saw %s", resp.StatusCode, got)
			}
			if time.Now().After(deadline) {
				t.Fatalf("X-Forwarded-For %q: want the app to see %s: %v%s", xff, want, err, n.ErrorLog())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	get("6.6.6.6", `["127.0.0.1"] real="127.0.0.1"`)

	// Behind a load balancer: the real_ip lines of docs/operations.md, with
	// loopback as the balancer, make the address it appended the client's.
	realIP := "set_real_ip_from 127.0.0.1;\nreal_ip_header X-Forwarded-For;\n"
	if err := os.WriteFile(filepath.Join(n.ConfDir, "00-real-ip.conf"), []byte(realIP), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", n.Test+" && "+n.Reload).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t and reload with real_ip: %v\n%s", err, out)
	}
	get("6.6.6.6, 203.0.113.7", `["203.0.113.7"] real="203.0.113.7"`)
}
