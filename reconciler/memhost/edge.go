package memhost

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// Observe implements reconciler.Edge as the nginx adapter does: the files
// <env>-<service>.conf in confDir whose header names env and that
// service, sorted by Service; Live is the header's color for an
// upstream-only site, else green when the marker is set, blue otherwise.
func (h Edge) Observe(ctx context.Context, env, confDir string) ([]state.Site, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "observe-sites", confDir, env); err != nil {
		return nil, err
	}
	var sites []state.Site
	for p, content := range h.files {
		if path.Dir(p) != path.Clean(confDir) {
			continue
		}
		fileEnv, service, blue, green, live, ok := templates.ParseHeader(content)
		if !ok || fileEnv != env || path.Base(p) != state.SiteFile(env, service) {
			continue
		}
		if live == "" {
			live = state.Blue
			if h.markers[siteKey(confDir, env, service)] == state.Green {
				live = state.Green
			}
		}
		sites = append(sites, state.Site{Service: service, Path: p, Content: bytes.Clone(content), Live: live, BluePort: blue, GreenPort: green})
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].Service < sites[j].Service })
	return sites, nil
}

// Write implements reconciler.Edge: the file holds content, then loaded
// (when set) is called; when it fails the previous bytes come back (or
// the file goes) and the error says so. Identical bytes are no write.
// checkOwner refuses, as reconciler/nginx does, to replace a file that
// reconciler did not write for content's site.
func checkOwner(p string, old []byte, existed bool, content []byte) error {
	if !existed {
		return nil
	}
	oe, osvc, _, _, _, ok := templates.ParseHeader(old)
	ne, ns, _, _, _, _ := templates.ParseHeader(content)
	if !ok {
		return fmt.Errorf("%s exists and has no reconciler header: it is an operator's own file", p)
	}
	if oe != ne || osvc != ns {
		return fmt.Errorf("%s belongs to env %s, service %s (its header), not to env %s, service %s", p, oe, osvc, ne, ns)
	}
	return nil
}

// CheckWrite implements host's check before a deploy: Write would accept
// content at p.
func (h Edge) CheckWrite(p string, content []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	old, existed := h.files[p]
	return checkOwner(p, old, existed, content)
}

func (h Edge) Write(ctx context.Context, p string, content []byte, loaded func(context.Context) error) error {
	h.mu.Lock()
	if err := h.call(ctx, "write", p, ""); err != nil {
		h.mu.Unlock()
		return err
	}
	old, existed := h.files[p]
	if err := checkOwner(p, old, existed, content); err != nil {
		h.mu.Unlock()
		return err
	}
	if existed && bytes.Equal(old, content) {
		h.mu.Unlock()
		return nil
	}
	h.files[p] = bytes.Clone(content)
	h.mu.Unlock()
	if loaded == nil {
		return nil
	}
	// Without the lock: loaded may call back into the host (a prober
	// that reads it).
	if err := loaded(context.WithoutCancel(ctx)); err != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		if existed {
			h.files[p] = old
		} else {
			delete(h.files, p)
		}
		return fmt.Errorf("nginx did not start serving %s after the reload: %w; restored %s", p, err, p)
	}
	return nil
}

// Switch implements reconciler.Edge: the main marker names color, and the
// canary marker is gone.
func (h Edge) Switch(ctx context.Context, confDir, env, service string, color state.Color) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "switch", env+"-"+service, string(color)); err != nil {
		return err
	}
	if color != state.Blue && color != state.Green {
		return fmt.Errorf("switch %s-%s: want color blue or green, got %q", env, service, color)
	}
	k := siteKey(confDir, env, service)
	if color == state.Green {
		h.markers[k] = state.Green
	} else {
		delete(h.markers, k)
	}
	delete(h.canary, k)
	return nil
}

// Pin implements reconciler.Edge: the site's drain marker names color, or
// is gone for "".
func (h Edge) Pin(ctx context.Context, confDir, env, service string, color state.Color) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := "pin"
	if color == "" {
		op = "unpin"
	}
	if err := h.call(ctx, op, env+"-"+service, string(color)); err != nil {
		return err
	}
	k := siteKey(confDir, env, service)
	switch color {
	case "":
		delete(h.pins, k)
	case state.Blue, state.Green:
		h.pins[k] = color
	default:
		return fmt.Errorf("pin %s-%s sessions: want color blue or green, got %q", env, service, color)
	}
	return nil
}

// Pinned returns the draining color whose sessions the site's drain
// marker keeps, "" when there is none.
func (h *Host) Pinned(confDir, env, service string) state.Color {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pins[siteKey(confDir, env, service)]
}

// Activity implements reconciler.DrainProber with h.Busy; a container
// that does not run is an error.
func (r Runtime) Activity(ctx context.Context, name string, port int, idle time.Duration) (reconciler.Activity, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.call(ctx, "activity", name, strconv.Itoa(port)); err != nil {
		return reconciler.Activity{}, err
	}
	e, ok := r.containers[name]
	if !ok || !e.c.Running() {
		return reconciler.Activity{}, fmt.Errorf("activity of %s: not running", name)
	}
	if r.Busy == nil {
		return reconciler.Activity{}, nil
	}
	return r.Busy(name, port), nil
}

// Shift implements reconciler.Edge.
func (h Edge) Shift(ctx context.Context, confDir, env, service string, color state.Color, percent int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "shift", env+"-"+service, strconv.Itoa(percent)+"% "+string(color)); err != nil {
		return err
	}
	if (color != state.Blue && color != state.Green) || percent < 1 || percent > 99 {
		return fmt.Errorf("shift %s-%s: want blue or green and 1-99%%, got %q %d%%", env, service, color, percent)
	}
	h.canary[siteKey(confDir, env, service)] = strconv.Itoa(percent) + " " + string(color)
	return nil
}

// Remove implements reconciler.Edge: the site's file and markers go; a
// file that is not reconciler's for this site is refused.
func (h Edge) Remove(ctx context.Context, confDir, env, service string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "remove-site", env+"-"+service, ""); err != nil {
		return err
	}
	p := strings.TrimRight(confDir, "/") + "/" + state.SiteFile(env, service)
	if content, ok := h.files[p]; ok {
		if fileEnv, fileService, _, _, _, ok := templates.ParseHeader(content); !ok || fileEnv != env || fileService != service {
			return fmt.Errorf("remove nginx site %s-%s: %s was not written by reconciler for this site; not touching it", env, service, p)
		}
		delete(h.files, p)
	}
	k := siteKey(confDir, env, service)
	delete(h.markers, k)
	delete(h.pins, k)
	delete(h.canary, k)
	return nil
}

// LastRequest implements reconciler.DrainLog with h.Used; the offset is
// the number of lines in the log.
func (h Edge) LastRequest(ctx context.Context, p string, from int64, port int) (time.Time, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "last-request", p, strconv.Itoa(port)); err != nil {
		return time.Time{}, from, err
	}
	var last time.Time
	if h.Used != nil {
		last = h.Used(p, port)
	}
	return last, int64(len(h.logs[p])), nil
}

// LogOffset implements reconciler.Edge: the number of lines in the log.
func (h Edge) LogOffset(ctx context.Context, p string) (int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.call(ctx, "log-offset", p, ""); err != nil {
		return 0, err
	}
	return int64(len(h.logs[p])), nil
}

// Traffic implements reconciler.Edge over the lines Serve appended.
func (h Edge) Traffic(ctx context.Context, p string, from int64, color state.Color) (reconciler.Traffic, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var t reconciler.Traffic
	if err := h.call(ctx, "traffic", p, string(color)); err != nil {
		return t, from, err
	}
	lines := h.logs[p]
	if from > int64(len(lines)) {
		from = 0
	}
	for _, l := range lines[from:] {
		if l.color != color {
			continue
		}
		t.Requests++
		if l.status >= 500 {
			t.Errors++
		}
		if l.upstream > 0 {
			t.Times = append(t.Times, l.upstream)
		}
	}
	return t, int64(len(lines)), nil
}
