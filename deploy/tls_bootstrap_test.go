package deploy

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// waitCode polls get until it returns want (nginx applies a reload
// asynchronously), and fails the test after 10s.
func waitCode(t *testing.T, get func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got status %d, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nginxWrapper writes a script that runs n's nginx binary with the private
// instance's prefix and config, for scripts that call "$NGINX_BIN".
func nginxWrapper(t *testing.T, bin, reloadCmd string) string {
	t.Helper()
	wrapper := filepath.Join(t.TempDir(), "nginx")
	args := strings.TrimSuffix(strings.TrimPrefix(reloadCmd, bin+" "), " -s reload")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+bin+" "+args+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper
}

// stubCertbot is certbot for the test: certonly --webroot puts a challenge
// file under the webroot and fetches it through nginx with the domain's
// Host header, as the CA would (for up to 5s); it fails when nginx does not
// serve it.
const stubCertbot = `#!/bin/sh
set -eu
echo "$*" >> "$CERTBOT_LOG"
w= d=
while [ $# -gt 0 ]; do
	case $1 in -w) w=$2; shift ;; -d) d=$2; shift ;; esac
	shift
done
mkdir -p "$w/.well-known/acme-challenge"
echo "key-$d" > "$w/.well-known/acme-challenge/tok-$d"
# nginx applies a reload asynchronously; the CA, too, asks more than once.
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	got=$(curl -s -H "Host: $d" "http://$CA_TARGET/.well-known/acme-challenge/tok-$d")
	[ "$got" = "key-$d" ] && exit 0
	sleep 0.25
done
echo "challenge for $d: got '$got'" >&2
exit 1
`

// TestTLSBootstrap runs deploy/tls-bootstrap.sh against a private nginx
// that has a default server like Debian's (root /var/www/html): the
// challenge of each domain is served from the webroot while certbot runs,
// the temporary server is gone afterwards (nginx -t passes), and the deploy
// hook is installed. The old docs' way (the default site, webroot
// /var/www/letsencrypt) serves no challenge.
func TestTLSBootstrap(t *testing.T) {
	n := testenv.StartNginx(t)
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.SkipOrFail(t, "curl not installed (scripts/deps.sh installs it): %v", err)
	}
	// nginx's workers (www-data when nginx runs as root) read the
	// webroot: a world-readable dir, not t.TempDir's 0700.
	dir, err := os.MkdirTemp("", "reconciler-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := itoa(testenv.FreePort(t))
	html := filepath.Join(dir, "html")
	if err := os.MkdirAll(html, 0o755); err != nil {
		t.Fatal(err)
	}
	def := "server {\n    listen 127.0.0.1:" + port + " default_server;\n    root " + html + ";\n    location / { try_files $uri $uri/ =404; }\n}\n"
	if err := os.WriteFile(filepath.Join(n.ConfDir, "default.conf"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	wrapper := nginxWrapper(t, n.Bin, n.Reload)
	if out, err := exec.Command(wrapper, "-s", "reload").CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	webroot := filepath.Join(dir, "letsencrypt")
	challenge := func(domain string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/.well-known/acme-challenge/tok-"+domain, nil)
		req.Host = domain
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// The old way: the token is under the webroot, the default site answers.
	if err := os.MkdirAll(filepath.Join(webroot, ".well-known", "acme-challenge"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(webroot, ".well-known", "acme-challenge", "tok-old.example.com"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitCode(t, func() int { return challenge("old.example.com") }, 404)

	stub := filepath.Join(dir, "certbot")
	if err := os.WriteFile(stub, []byte(stubCertbot), 0o755); err != nil {
		t.Fatal(err)
	}
	hookDir := filepath.Join(dir, "renewal-hooks", "deploy")
	log := filepath.Join(dir, "certbot.log")
	cmd := exec.Command("sh", "tls-bootstrap.sh", "ops@example.com", "mcp.example.com", "api.example.com")
	cmd.Env = append(os.Environ(), "NGINX_BIN="+wrapper, "CERTBOT="+stub, "CONF_DIR="+n.ConfDir, "WEBROOT="+webroot,
		"HOOK_DIR="+hookDir, "LISTEN=127.0.0.1:"+port, "CERTBOT_LOG="+log, "CA_TARGET=127.0.0.1:"+port)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tls-bootstrap.sh: %v\n%s%s", err, out, n.ErrorLog())
	}
	calls, _ := os.ReadFile(log)
	for _, d := range []string{"mcp.example.com", "api.example.com"} {
		want := "certonly --webroot -w " + webroot + " -d " + d + " "
		if !strings.Contains(string(calls), want) {
			t.Errorf("certbot calls:\n%s\nwant one with %q", calls, want)
		}
	}
	if strings.Contains(string(calls), "--standalone") {
		t.Errorf("certbot --standalone fights nginx for port 80:\n%s", calls)
	}
	if _, err := os.Stat(filepath.Join(n.ConfDir, "reconciler-acme-bootstrap.conf")); !os.IsNotExist(err) {
		t.Errorf("the temporary server is still there: %v", err)
	}
	if out, err := exec.Command(wrapper, "-t").CombinedOutput(); err != nil {
		t.Errorf("nginx -t after the bootstrap: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(hookDir, "reconciler-nginx.sh")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("deploy hook not installed executable: %v", err)
	}
	// The temporary server is gone: the default site answers again.
	waitCode(t, func() int { return challenge("mcp.example.com") }, 404)

	// A certbot failure still removes the temporary server.
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sh", "tls-bootstrap.sh", "ops@example.com", "mcp.example.com")
	cmd.Env = append(os.Environ(), "NGINX_BIN="+wrapper, "CERTBOT="+stub, "CONF_DIR="+n.ConfDir, "WEBROOT="+webroot,
		"HOOK_DIR="+hookDir, "LISTEN=127.0.0.1:"+port)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("tls-bootstrap.sh with a failing certbot exited 0:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(n.ConfDir, "reconciler-acme-bootstrap.conf")); !os.IsNotExist(err) {
		t.Errorf("after a failure the temporary server is still there: %v", err)
	}
}
