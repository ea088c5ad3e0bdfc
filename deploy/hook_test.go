// Package deploy holds files installed on the host next to reconciler (the
// agent's systemd unit and settings, nginx files, the TLS bootstrap and the
// certbot deploy hook); its tests verify the units and run the rest against
// a real nginx.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// TestCertbotDeployHook runs the hook against a private nginx: it reloads
// when nginx -t passes, and refuses (exit 1, nginx untouched) when it fails.
func TestCertbotDeployHook(t *testing.T) {
	n := testenv.StartNginx(t)
	// The hook calls "$NGINX_BIN -t" and "$NGINX_BIN -s reload"; the wrapper adds the
	// private instance's prefix and config.
	wrapper := filepath.Join(t.TempDir(), "nginx")
	args := strings.TrimPrefix(n.Reload, n.Bin+" ")
	args = strings.TrimSuffix(args, " -s reload")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+n.Bin+" "+args+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hook := func() (string, error) {
		cmd := exec.Command("sh", "certbot-deploy-hook.sh")
		cmd.Env = append(os.Environ(), "NGINX_BIN="+wrapper, "RENEWED_DOMAINS=mcp.example.com")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := hook()
	if err != nil || !strings.Contains(out, "nginx reloaded for mcp.example.com") {
		t.Fatalf("hook on a valid config: %v\n%s%s", err, out, n.ErrorLog())
	}

	if err := os.WriteFile(filepath.Join(n.ConfDir, "broken.conf"), []byte("server { listen 127.0.0.1:1; nonsense; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = hook()
	if err == nil || !strings.Contains(out, "not reloading") || !strings.Contains(out, "nonsense") {
		t.Fatalf("hook on a broken config: err %v, want exit 1 with nginx's message\n%s", err, out)
	}
	log := n.ErrorLog()
	if strings.Count(log, "SIGHUP) received") != 1 {
		t.Errorf("want exactly one reload (the first run), error.log:\n%s", log)
	}
}
