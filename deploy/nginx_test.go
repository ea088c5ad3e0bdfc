package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// nginxCmd runs the private nginx n with args (e.g. "-t"), without -q, so
// that warnings show, and returns its output.
func nginxCmd(t *testing.T, n *testenv.Nginx, args ...string) (string, error) {
	t.Helper()
	base := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(n.Reload, n.Bin+" "), " -s reload"))
	out, err := exec.Command(n.Bin, append(base, args...)...).CombinedOutput()
	return string(out), err
}

// reload tests and reloads n. The master opens new listening sockets when
// it rereads the configuration; callers retry a refused connection.
func reload(t *testing.T, n *testenv.Nginx) {
	t.Helper()
	if out, err := nginxCmd(t, n, "-t"); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if out, err := nginxCmd(t, n, "-s", "reload"); err != nil {
		t.Fatalf("nginx -s reload: %v\n%s", err, out)
	}
}

// install copies a deploy/ file into n's conf.d as name, with each
// replacement applied; a replacement that matches nothing fails the test
// (the file changed under the test).
func install(t *testing.T, n *testenv.Nginx, src, name string, replace ...string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s: %q not found", src, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, name), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a certificate for names and its key to dir as
// fullchain.pem and privkey.pem, as certbot lays them out, and returns a
// pool that trusts it.
func selfSigned(t *testing.T, dir string, names ...string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fullchain.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "privkey.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestNginxAgentSite: deploy/nginx-agent.conf passes `nginx -t` without a
// warning beside a reconciler-written server for the same name, and
// exposes exactly the hook (POST) and /status (with the bearer token) of
// the agent. The recipe docs/operations.md gave before (a server for
// api.dev-mesh.io on the port reconciler's server uses) makes nginx warn
// "conflicting server name" and is ignored.
func TestNginxAgentSite(t *testing.T) {
	n := testenv.StartNginx(t)
	var mu sync.Mutex
	var hits []string
	agent := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.Method+" "+r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/hooks/github":
			w.WriteHeader(http.StatusAccepted)
		default:
			_, _ = io.WriteString(w, `{"appliedCommit":"abc"}`)
		}
	})}
	agentPort := testenv.FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+itoa(agentPort))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = agent.Serve(l) }()
	t.Cleanup(func() { _ = agent.Close() })

	dir := t.TempDir()
	pool := selfSigned(t, filepath.Join(dir, "live", "api.dev-mesh.io"), "api.dev-mesh.io")
	tokenMap := filepath.Join(dir, "status-token.map")
	if err := os.WriteFile(tokenMap, []byte("\"Bearer tok-123\" 1;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What reconciler writes for a TLS service: a server for the name on
	// the public port (443 on the host).
	apiPort := testenv.FreePort(t)
	reconcilerSite := "server {\n    listen 127.0.0.1:" + itoa(apiPort) + ";\n    server_name api.dev-mesh.io;\n    return 200 api;\n}\n"
	if err := os.WriteFile(filepath.Join(n.ConfDir, "prod-rest-api.conf"), []byte(reconcilerSite), 0o644); err != nil {
		t.Fatal(err)
	}

	// The old recipe: warned about and ignored.
	old := "server {\n    listen 127.0.0.1:" + itoa(apiPort) + ";\n    server_name api.dev-mesh.io;\n    location = /hooks/github { proxy_pass http://127.0.0.1:" + itoa(agentPort) + "; }\n}\n"
	if err := os.WriteFile(filepath.Join(n.ConfDir, "zz-old-recipe.conf"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := nginxCmd(t, n, "-t"); !strings.Contains(out, "conflicting server name") {
		t.Fatalf("the old recipe: want nginx's conflicting server name warning, got:\n%s", out)
	}
	if err := os.Remove(filepath.Join(n.ConfDir, "zz-old-recipe.conf")); err != nil {
		t.Fatal(err)
	}

	port := testenv.FreePort(t)
	install(t, n, "nginx-agent.conf", "reconciler-agent.conf",
		"listen 8443 ssl;", "listen 127.0.0.1:"+itoa(port)+" ssl;",
		"/etc/letsencrypt/", dir+"/",
		"/etc/nginx/reconciler-status-token.map", tokenMap,
		"/var/log/nginx/", n.Dir+"/",
		"http://127.0.0.1:9100", "http://127.0.0.1:"+itoa(agentPort))
	out, err := nginxCmd(t, n, "-t")
	if err != nil || strings.Contains(out, "[warn]") || strings.Contains(out, "conflicting") {
		t.Fatalf("nginx -t with nginx-agent.conf: %v\n%s", err, out)
	}
	reload(t, n)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "api.dev-mesh.io"}}}
	base := "https://127.0.0.1:" + itoa(port)
	do := func(method, path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader("{}"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		var resp *http.Response
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err = client.Do(req)
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/hooks/github", "", 202},
		{"GET", "/hooks/github", "", 403},
		{"GET", "/status", "", 401},
		{"GET", "/status", "Bearer wrong", 401},
		{"GET", "/status", "Bearer tok-123", 200},
		{"GET", "/metrics", "", 404},
		{"GET", "/healthz", "", 404},
	} {
		if got := do(tc.method, tc.path, tc.auth); got != tc.want {
			t.Errorf("%s %s (auth %q): %d, want %d", tc.method, tc.path, tc.auth, got, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(hits, ", "); got != "POST /hooks/github, GET /status" {
		t.Errorf("requests that reached the agent: %s; want only the hook and the authorized /status", got)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
