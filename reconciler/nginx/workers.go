package nginx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/developer-mesh/reconciler/internal/atomicfile"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// probeUnseen is the probe location's answer (status 200) while nginx's
// workers do not see the probe file (templates/nginx-site.conf.tmpl).
const probeUnseen = "probe file not seen"

// ProbeTimeout bounds the wait for nginx's workers to see a probe file:
// they test it on every request, so a correct host answers at once.
const ProbeTimeout = 2 * time.Second

// Getter sends a GET to nginx and returns the answer. httpprobe.Prober
// implements it.
type Getter interface {
	// Get sends r and returns the status and the body, surrounding white
	// space trimmed, whatever they are.
	Get(ctx context.Context, r reconciler.SmokeRequest, timeout time.Duration) (int, string, error)
}

// ProbeSite is a site of the environment and the GET of its probe
// location (templates.ProbePath, want 204) over its own address.
type ProbeSite struct {
	Service string
	Request reconciler.SmokeRequest
}

// Workers proves that nginx's workers see the files in ConfDir, the way
// they must see the markers that move traffic: it writes a site's probe
// file (state.ProbeFile), asks nginx for the site's probe location until
// it answers 204, and removes the file again. The probe file is the only
// thing it writes; no marker, site file or reload is touched.
type Workers struct {
	Env, ConfDir string
	// Sites are the env's sites with a listen address, sorted; the first
	// whose file on disk has the probe location is asked.
	Sites  []ProbeSite
	Prober Getter
}

// ProbeWorkers runs the probe and returns what it proved. When nginx does
// not see the probe file, the error names the file and the fix. With no
// site to ask (a first deploy), it proves nothing through nginx and says
// so; a conf dir that other users cannot search is then named in the
// detail, since nothing moves traffic before a site is served.
func (w Workers) ProbeWorkers(ctx context.Context) (string, error) {
	for _, s := range w.Sites {
		content, err := os.ReadFile(filepath.Join(w.ConfDir, state.SiteFile(w.Env, s.Service)))
		if err != nil || !templates.HasRoute(content) {
			continue
		}
		return w.probe(ctx, s)
	}
	detail := "no site of " + w.Env + " serves the probe yet (first deploy): not asked through nginx"
	if dir := unsearchable(w.ConfDir); dir != "" {
		detail += fmt.Sprintf("; note that %s cannot be searched by other users: nginx's workers must see %s before a second deploy moves traffic", dir, w.ConfDir)
	}
	return detail, nil
}

func (w Workers) probe(ctx context.Context, s ProbeSite) (string, error) {
	file := filepath.Join(w.ConfDir, state.ProbeFile(w.Env, s.Service))
	body := []byte("# reconciler: the pre-deploy check of nginx's workers; removed at once.\n")
	if err := atomicfile.Write(file, body, 0o644); err != nil {
		// Not this check's to fail: the deploy's own writes report a
		// conf dir that cannot be written, and undo what they did.
		return fmt.Sprintf("not proved: cannot write the probe file: %v", err), nil
	}
	defer atomicfile.Remove(file)
	deadline := time.Now().Add(ProbeTimeout)
	for {
		status, answer, err := w.Prober.Get(ctx, s.Request, time.Second)
		if err == nil && status == s.Request.WantStatus {
			return fmt.Sprintf("nginx's workers see %s (GET %s answered %d)", w.ConfDir, s.Request.URL, status), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil || status != 200 || answer != probeUnseen {
				// Not the probe location answering: the site nginx
				// serves is not the env file's yet (a listen or TLS
				// change this deploy makes). The deploy's own route
				// checks still ask nginx after each move.
				if err == nil {
					err = fmt.Errorf("status %d", status)
				}
				return fmt.Sprintf("not proved: GET %s: %v (the site nginx serves differs from the env file's until this deploy)", s.Request.URL, err), nil
			}
			return "", fmt.Errorf("nginx's workers do not see %s (GET %s answered %q for %s). The likely cause: they run as another user (nginx's user directive, often nobody or www-data) that cannot search %s; %s. A switch would not move traffic",
				file, s.Request.URL, answer, ProbeTimeout, w.ConfDir, fixHint(w.ConfDir))
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// fixHint names the directory to open up: the first of dir and its
// parents that other users cannot search, else dir itself.
func fixHint(dir string) string {
	d := unsearchable(dir)
	if d == "" {
		d = dir
	}
	return fmt.Sprintf("make %s readable and searchable by that user (chmod 0755 %s)", d, d)
}

// unsearchable returns the first of dir and its parents that lacks the
// search permission for other users (mode o+x), "" when none does or
// when one cannot be read.
func unsearchable(dir string) string {
	var chain []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		fi, err := os.Stat(chain[i])
		if errors.Is(err, fs.ErrNotExist) || err != nil {
			return ""
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return chain[i]
		}
	}
	return ""
}
