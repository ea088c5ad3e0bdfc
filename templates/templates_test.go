package templates

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the templates")

// listen parses an nginx listen value of a test case.
func listen(s string) *state.Listen {
	l, err := state.ParseListen(s)
	if err != nil {
		panic(err)
	}
	return &l
}

// siteCases are the golden cases; confDir replaces ConfDir and the TLS paths'
// directory when the nginx -t test renders them.
func siteCases(confDir, certDir string) []struct {
	name string
	p    SiteParams
} {
	return []struct {
		name string
		p    SiteParams
	}{
		{"plain", SiteParams{
			Env: "prod", Service: "mcp-server", ConfDir: confDir,
			BluePort: 21234, GreenPort: 21235, Listen: listen("127.0.0.1:8080"),
		}},
		{"tls", SiteParams{
			Env: "prod", Service: "rest-api", ConfDir: confDir,
			BluePort: 21236, GreenPort: 21237, Listen: listen("443 ssl"), ServerName: "api.dev-mesh.io",
			TLS: &state.TLS{Certificate: certDir + "/api.dev-mesh.io.crt", Key: certDir + "/api.dev-mesh.io.key"},
		}},
		{"canary-log", SiteParams{
			Env: "prod", Service: "mcp-server", ConfDir: confDir,
			BluePort: 21240, GreenPort: 21241, Listen: listen("127.0.0.1:8080"),
			LogDir: confDir, Canary: []int{10, 50},
		}},
		{"mcp", SiteParams{
			Env: "prod", Service: "mcp-server", ConfDir: confDir,
			BluePort: 21242, GreenPort: 21243, Listen: listen("127.0.0.1:8080"),
			SessionHeader: "Mcp-Session-Id", LogDir: confDir,
		}},
		{"upstream-only", SiteParams{
			Env: "staging", Service: "api", ConfDir: confDir,
			BluePort: 21238, GreenPort: 21239, Live: state.Green,
		}},
	}
}

func TestSiteGolden(t *testing.T) {
	for _, tc := range siteCases("/etc/nginx/conf.d", "/etc/ssl/dev-mesh") {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Site(tc.p)
			if err != nil {
				t.Fatalf("Site: %v", err)
			}
			again, _ := Site(tc.p)
			if string(again) != string(got) {
				t.Fatalf("Site is not deterministic")
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./templates -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("Site(%s) differs from %s (go test ./templates -update rewrites it)\n--- got\n%s\n--- want\n%s", tc.name, golden, got, want)
			}

			env, service, blue, green, live, ok := ParseHeader(got)
			wantLive := state.Color("")
			if tc.p.Listen == nil {
				wantLive = tc.p.Live
			}
			if !ok || env != tc.p.Env || service != tc.p.Service || blue != tc.p.BluePort || green != tc.p.GreenPort || live != wantLive {
				t.Errorf("ParseHeader = %q %q %d %d %q %v, want %q %q %d %d %q true",
					env, service, blue, green, live, ok, tc.p.Env, tc.p.Service, tc.p.BluePort, tc.p.GreenPort, wantLive)
			}
		})
	}
}

// TestSiteNginxAccepts runs the real nginx -t on every rendered case. nginx -t
// does not bind the listen sockets, so "443 ssl" is tested as written.
func TestSiteNginxAccepts(t *testing.T) {
	n := testenv.StartNginx(t)
	certDir := t.TempDir()
	writeSelfSigned(t, certDir, "api.dev-mesh.io")
	for _, tc := range siteCases(n.ConfDir, certDir) {
		t.Run(tc.name, func(t *testing.T) {
			path, content := writeSite(t, n, tc.p)
			defer os.Remove(path)
			if out, err := exec.Command("sh", "-c", n.Test).CombinedOutput(); err != nil {
				t.Fatalf("nginx -t rejected %s: %v\n%s\n%s", tc.name, err, out, content)
			}
		})
	}
}

// TestSitesCoexist checks that the sites of two environments and services
// load together: no upstream or variable names collide.
func TestSitesCoexist(t *testing.T) {
	n := testenv.StartNginx(t)
	for i, site := range []struct{ env, service string }{
		{"prod", "api"}, {"staging", "api"}, {"prod", "api-v2"}, {"prod-eu", "api"},
	} {
		writeSite(t, n, SiteParams{
			Env: site.env, Service: site.service, ConfDir: n.ConfDir,
			BluePort: 22000 + 2*i, GreenPort: 22001 + 2*i, Listen: listen("127.0.0.1:8080"),
			ServerName: site.env + "." + site.service + ".example",
			LogDir:     n.Dir, Canary: []int{10, 50},
		})
	}
	nginxAccepts(t, n)
}

// writeSite renders p into its site file under n's confDir.
func writeSite(t *testing.T, n *testenv.Nginx, p SiteParams) (path string, content []byte) {
	t.Helper()
	content, err := Site(p)
	if err != nil {
		t.Fatalf("Site: %v", err)
	}
	path = filepath.Join(n.ConfDir, state.SiteFile(p.Env, p.Service))
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// nginxAccepts fails t when n's test command (nginx -t) rejects the
// configuration.
func nginxAccepts(t *testing.T, n *testenv.Nginx) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", n.Test).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

func TestSiteRejects(t *testing.T) {
	ok := SiteParams{Env: "prod", Service: "api", ConfDir: "/etc/nginx/conf.d", BluePort: 1, GreenPort: 2, Listen: listen("80")}
	tests := []struct {
		name    string
		edit    func(p *SiteParams)
		wantErr string
	}{
		{"env with dot", func(p *SiteParams) { p.Env = "prod.eu" }, "env:"},
		{"service empty", func(p *SiteParams) { p.Service = "" }, "service:"},
		{"relative confDir", func(p *SiteParams) { p.ConfDir = "conf.d" }, "confDir:"},
		{"confDir with quote", func(p *SiteParams) { p.ConfDir = `/etc/"x` }, "confDir:"},
		{"port zero", func(p *SiteParams) { p.BluePort = 0 }, "blue port:"},
		{"same ports", func(p *SiteParams) { p.GreenPort = 1 }, "two different ports"},
		{"listen injection", func(p *SiteParams) { p.Listen = &state.Listen{Port: 80, Params: []string{"; include /etc/passwd"}} }, "listen:"},
		{"serverName injection", func(p *SiteParams) { p.ServerName = "a.io; }" }, "serverName:"},
		{"tls key relative", func(p *SiteParams) { p.TLS = &state.TLS{Certificate: "/c", Key: "k"} }, "tls.key:"},
		{"upstream-only without live", func(p *SiteParams) { p.Listen = nil }, "live:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			got, err := Site(p)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Site error = %v, want it to contain %q", err, tc.wantErr)
			}
			if got != nil {
				t.Fatalf("Site returned bytes with an error")
			}
		})
	}
	if _, err := Site(ok); err != nil {
		t.Fatalf("Site(valid) = %v", err)
	}
}

func TestParseHeaderForeign(t *testing.T) {
	for _, content := range []string{
		"",
		"upstream api { server 127.0.0.1:8080; }\n",
		"# Managed by someone else\n",
		" # Managed by reconciler: env=prod service=api. Do not edit: changes are overwritten.\n",
	} {
		if _, _, _, _, _, ok := ParseHeader([]byte(content)); ok {
			t.Errorf("ParseHeader(%q) ok, want not ours", content)
		}
	}
	env, service, blue, green, live, ok := ParseHeader([]byte("# Managed by reconciler: env=prod service=api. Do not edit: changes are overwritten.\n# hand-edited\n"))
	if !ok || env != "prod" || service != "api" || blue != 0 || green != 0 || live != "" {
		t.Errorf("ParseHeader without ports line = %q %q %d %d %q %v", env, service, blue, green, live, ok)
	}
}

// writeSelfSigned writes <dir>/<name>.crt and <name>.key.
func writeSelfSigned(t *testing.T, dir, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		name + ".crt": {Type: "CERTIFICATE", Bytes: der},
		name + ".key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
