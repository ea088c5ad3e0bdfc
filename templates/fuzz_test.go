package templates

import (
	"testing"

	"github.com/developer-mesh/reconciler/state"
)

// FuzzSiteHeader: ParseHeader takes any bytes without panicking, and a
// file Site renders is read back with its env, service and ports.
func FuzzSiteHeader(f *testing.F) {
	f.Add([]byte("# Managed by reconciler: env=prod service=api. Do not edit: changes are overwritten.\n# reconciler-ports: blue=1 green=2 live=blue\n"), "prod", "api", 20000)
	f.Add([]byte("server {}\n"), "cc-x", "y", 29999)
	f.Fuzz(func(t *testing.T, content []byte, env, service string, port int) {
		ParseHeader(content)
		l := state.Listen{Host: "127.0.0.1", Port: 8080}
		out, err := Site(SiteParams{Env: env, Service: service, ConfDir: "/etc/nginx/conf.d", BluePort: port, GreenPort: port + 1, Listen: &l})
		if err != nil {
			return
		}
		e, s, b, g, _, ok := ParseHeader(out)
		if !ok || e != env || s != service || b != port || g != port+1 {
			t.Fatalf("rendered header of %q/%q reads back as %q/%q %d/%d ok=%v", env, service, e, s, b, g, ok)
		}
	})
}
