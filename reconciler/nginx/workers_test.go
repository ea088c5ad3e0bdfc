package nginx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// probeGetter answers the probe location as nginx does: 204 while the
// probe file exists and seeing is true, else 200 "probe file not seen";
// err, when set, is every answer.
type probeGetter struct {
	file   string
	seeing bool
	err    error
	asked  int
}

func (g *probeGetter) Get(_ context.Context, _ reconciler.SmokeRequest, _ time.Duration) (int, string, error) {
	g.asked++
	if g.err != nil {
		return 0, "", g.err
	}
	if _, err := os.Stat(g.file); err == nil && g.seeing {
		return 204, "", nil
	}
	return 200, probeUnseen, nil
}

func TestProbeWorkers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		seeing  bool
		err     error
		site    bool // the site file with the probe location exists
		wantErr string
		detail  string
	}{
		{name: "seen", seeing: true, site: true, detail: "nginx's workers see"},
		{name: "not seen", site: true, wantErr: "chmod 0755"},
		{name: "site not served as the env file says", site: true, err: errors.New("connection refused"), detail: "not proved"},
		{name: "no site yet", detail: "not asked through nginx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.site {
				content, err := templates.Site(templates.SiteParams{Env: "p", Service: "web", ConfDir: dir, BluePort: 1, GreenPort: 2,
					Listen: &state.Listen{Host: "127.0.0.1", Port: 8080}})
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, state.SiteFile("p", "web")), content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(dir, state.ProbeFile("p", "web"))
			g := &probeGetter{file: file, seeing: tc.seeing, err: tc.err}
			w := Workers{Env: "p", ConfDir: dir, Prober: g,
				Sites: []ProbeSite{{Service: "web", Request: reconciler.SmokeRequest{URL: "http://127.0.0.1:8080" + templates.ProbePath, WantStatus: 204}}}}
			detail, err := w.ProbeWorkers(context.Background())
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), file) {
					t.Fatalf("ProbeWorkers = %q, %v; want an error naming %s and %q", detail, err, file, tc.wantErr)
				}
			case err != nil || !strings.Contains(detail, tc.detail):
				t.Fatalf("ProbeWorkers = %q, %v; want %q", detail, err, tc.detail)
			}
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Errorf("probe file left behind: %v", err)
			}
			if !tc.site && g.asked != 0 {
				t.Errorf("asked nginx %d times without a site", g.asked)
			}
		})
	}
}
