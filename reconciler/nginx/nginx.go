// Package nginx implements reconciler.Edge on an nginx host: it writes the
// site files reconciler owns in confDir, checks them with the test command,
// reloads, and moves traffic between colors with marker files.
package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/internal/atomicfile"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// Defaults for the commands, as docs/reference.md states them.
const (
	DefaultTest   = "nginx -t"
	DefaultReload = "nginx -s reload"
)

// CommandTimeout bounds each run of the test or reload command.
const CommandTimeout = 30 * time.Second

// ErrTestFailed is wrapped by the errors of Write, Remove and Test when the
// test command rejects the configuration.
var ErrTestFailed = errors.New("nginx -t failed")

var _ reconciler.Edge = (*Edge)(nil)

// Edge is reconciler's view of one nginx. It owns only the files whose header
// says they are reconciler's (see templates.ParseHeader) and their markers.
// Its methods are safe for concurrent use; they run one at a time.
type Edge struct {
	test, reload string
	log          *zap.Logger
	mu           sync.Mutex
}

// New returns an Edge that checks the configuration with test and applies it
// with reload. Both run through "sh -c" with a timeout of CommandTimeout;
// empty means DefaultTest and DefaultReload. A nil log discards.
func New(test, reload string, log *zap.Logger) *Edge {
	if test == "" {
		test = DefaultTest
	}
	if reload == "" {
		reload = DefaultReload
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Edge{test: test, reload: reload, log: log}
}

// Observe returns env's sites in confDir, sorted by Service: the files
// <env>-<service>.conf whose header names env and that service. Other files
// are not reconciler's and are left out. Live is green when the service's
// marker exists and blue otherwise; for an upstream-only site it is the
// header's live color. A missing confDir yields no sites and no error.
func (e *Edge) Observe(ctx context.Context, env, confDir string) ([]state.Site, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	entries, err := os.ReadDir(confDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("observe nginx sites: %w", err)
	}
	var sites []state.Site
	for _, ent := range entries {
		name := ent.Name()
		if !ent.Type().IsRegular() || !strings.HasPrefix(name, env+"-") || !strings.HasSuffix(name, ".conf") {
			continue
		}
		path := filepath.Join(confDir, name)
		content, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("observe nginx sites: %w", err)
		}
		fileEnv, service, blue, green, live, ok := templates.ParseHeader(content)
		if !ok || fileEnv != env {
			continue
		}
		if name != state.SiteFile(env, service) {
			// A copy of one of our files under another name: nginx loads
			// it, but we did not write it there and will not touch it.
			e.log.Warn("ignoring nginx file whose header names another file",
				zap.String("path", path), zap.String("service", service))
			continue
		}
		if live == "" {
			live, err = markerColor(confDir, env, service)
			if err != nil {
				return nil, fmt.Errorf("observe nginx sites: %w", err)
			}
		}
		_, perr := os.Stat(pendingPath(path))
		sites = append(sites, state.Site{
			Service: service, Path: path, Content: content, Live: live,
			BluePort: blue, GreenPort: green, Unloaded: perr == nil,
		})
	}
	sort.Slice(sites, func(i, j int) bool { return sites[i].Service < sites[j].Service })
	return sites, nil
}

func markerColor(confDir, env, service string) (state.Color, error) {
	_, err := os.Stat(filepath.Join(confDir, state.MarkerFile(env, service)))
	switch {
	case err == nil:
		return state.Green, nil
	case errors.Is(err, fs.ErrNotExist):
		return state.Blue, nil
	default:
		return "", err
	}
}

// Write makes path hold content. When the file already holds exactly these
// bytes, and no earlier Write of it was cut short before its reload (see
// pendingPath), it does nothing: no test, no reload. Otherwise it replaces the file
// atomically (atomicfile.Write: temp file in the same directory, fsync, rename, fsync of the directory; the mode of an
// existing file is kept, a new file gets 0644), runs the test command and
// then the reload command. When either fails, the previous bytes are put
// back (or the new file removed) and the error carries the command's output;
// a failed test wraps ErrTestFailed. So on error nginx runs, and the disk
// holds, the previous configuration.
func (e *Edge) Write(ctx context.Context, path string, content []byte, loaded func(context.Context) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old, err := os.ReadFile(path)
	existed := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write nginx site: %w", err)
	}
	if existed {
		if err := CheckOwner(path, old, content); err != nil {
			return err
		}
	}
	pending := pendingPath(path)
	_, perr := os.Stat(pending)
	wasPending := perr == nil
	if existed && bytes.Equal(old, content) && !wasPending {
		return nil
	}
	// The pending file outlives a crash between the write and the reload,
	// so that the next apply knows nginx may not run what the disk holds.
	if err := atomicfile.Write(pending, nil, 0o644); err != nil {
		return fmt.Errorf("write nginx site: %w (%s)", err, confDirHint(filepath.Dir(path)))
	}
	mode := fs.FileMode(0o644)
	if existed {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("write nginx site: %w", err)
		}
		mode = fi.Mode().Perm()
	}
	if err := atomicfile.Write(path, content, mode); err != nil {
		_ = atomicfile.Remove(pending)
		return fmt.Errorf("write nginx site: %w (%s)", err, confDirHint(filepath.Dir(path)))
	}
	undo := func() error {
		if existed {
			return atomicfile.Write(path, old, mode)
		}
		return atomicfile.Remove(path)
	}
	if err := e.applyOrUndo(ctx, path, undo, loaded); err != nil {
		if !wasPending {
			_ = atomicfile.Remove(pending) // the previous, loaded file is back
		}
		return err
	}
	if err := atomicfile.Remove(pending); err != nil {
		return fmt.Errorf("write nginx site: %w", err)
	}
	e.log.Info("wrote nginx site and reloaded", zap.String("path", path))
	return nil
}

// ErrNotOurs is wrapped by the error of a write to a file that reconciler
// did not write for the same environment and service.
var ErrNotOurs = errors.New("not reconciler's file for this site")

// CheckOwner returns nil when old, the bytes at path, may be replaced by
// content: both have reconciler's header naming the same environment and
// service. A file without the header is an operator's own file; one whose
// header names another environment or service belongs to that site (env
// cc with service x-y and env cc-x with service y share cc-x-y.conf). Both
// are refused, naming the file and its owner.
func CheckOwner(path string, old, content []byte) error {
	oldEnv, oldService, _, _, _, ok := templates.ParseHeader(old)
	if !ok {
		return fmt.Errorf("%s exists and has no reconciler header: it is an operator's own file, which reconciler does not overwrite (and does not back up); rename or remove it: %w", path, ErrNotOurs)
	}
	env, service, _, _, _, ok := templates.ParseHeader(content)
	if !ok || env != oldEnv || service != oldService {
		return fmt.Errorf("%s belongs to env %s, service %s (its header), not to env %s, service %s: the names collide (<env>-<service>); rename one of the services: %w",
			path, oldEnv, oldService, env, service, ErrNotOurs)
	}
	return nil
}

// CheckWrite reports, without changing anything, whether Write would
// accept content at path: nil for a missing file or one of the same site,
// else CheckOwner's error.
func (e *Edge) CheckWrite(path string, content []byte) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read nginx site: %w", err)
	}
	return CheckOwner(path, old, content)
}

// pendingPath is the file that exists while a Write of path has not been
// reloaded yet: ".<name>.pending" beside it, which nginx's *.conf include
// never matches.
func pendingPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".pending")
}

// applyOrUndo runs the test and the reload after a change to path; when one
// fails it calls undo and says so in the error.
func (e *Edge) applyOrUndo(ctx context.Context, path string, undo func() error, loaded func(context.Context) error) error {
	err := e.runTest(ctx)
	reloaded := false
	if err == nil {
		// Past a passing test, finish the reload even when ctx is
		// cancelled: a file on disk that nginx has not loaded would look
		// up to date to the next Write.
		err = e.runReload(context.WithoutCancel(ctx))
		reloaded = err == nil
	}
	if err == nil && loaded != nil {
		// A reload is only a signal: nginx may still be starting workers,
		// or may have kept the old configuration (a listen address it
		// could not bind passes nginx -t).
		if lerr := loaded(context.WithoutCancel(ctx)); lerr != nil {
			err = fmt.Errorf("nginx did not start serving %s after the reload: %w (see nginx's error log: a listen address in use, or a file nginx cannot read?)", path, lerr)
		}
	}
	if err == nil {
		return nil
	}
	if uerr := undo(); uerr != nil {
		return fmt.Errorf("%w; restoring %s failed too: %v", err, path, uerr)
	}
	if reloaded {
		if rerr := e.runReload(context.WithoutCancel(ctx)); rerr != nil {
			return fmt.Errorf("%w; restored %s but the reload after it failed: %v", err, path, rerr)
		}
	}
	return fmt.Errorf("%w; restored %s", err, path)
}

// Switch sends new requests for the service to color: green creates the
// marker <confDir>/<env>-<service>.green atomically, blue removes it. It runs
// neither the test nor the reload: nginx tests the marker on every request.
// Requests in flight finish on the color they started on. Switching to the
// color already live does nothing. An upstream-only site ignores the marker;
// switch it by writing its file.
func (e *Edge) Switch(ctx context.Context, confDir, env, service string, color state.Color) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := setMarker(confDir, env, service, color); err != nil {
		return err
	}
	// Canary markers override the main one: clear them only now, so the
	// new color's share never drops on the way to all of the traffic.
	if err := clearCanary(confDir, env, service, ""); err != nil {
		return fmt.Errorf("switch %s-%s to %s: %w", env, service, color, err)
	}
	e.log.Info("switched traffic", zap.String("site", env+"-"+service), zap.String("color", string(color)))
	return nil
}

// Shift sends percent (1-99) of a site's requests to color by writing its
// canary marker, then removes every other canary marker of the site. The
// main marker keeps naming the color that gets the rest. No test, no reload:
// the site's file defines a split for each canary step.
func (e *Edge) Shift(ctx context.Context, confDir, env, service string, color state.Color, percent int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if (color != state.Blue && color != state.Green) || percent < 1 || percent > 99 {
		return fmt.Errorf("shift %s-%s: want blue or green and 1-99%%, got %q %d%%", env, service, color, percent)
	}
	name := state.CanaryMarkerFile(env, service, percent, color)
	body := fmt.Sprintf("# reconciler: %d%% of %s-%s goes to %s while this file exists.\n", percent, env, service, color)
	if err := atomicfile.Write(filepath.Join(confDir, name), []byte(body), 0o644); err != nil {
		return fmt.Errorf("shift %s-%s to %d%% %s: %w", env, service, percent, color, err)
	}
	if err := clearCanary(confDir, env, service, name); err != nil {
		return fmt.Errorf("shift %s-%s to %d%% %s: %w", env, service, percent, color, err)
	}
	e.log.Info("shifted traffic", zap.String("site", env+"-"+service), zap.String("color", string(color)), zap.Int("percent", percent))
	return nil
}

// Pin writes the site's drain marker <confDir>/<env>-<service>.draining,
// which keeps the requests with a session header on the draining color
// when the live one does not know the session (see templates.SiteParams);
// color "" removes it. No test, no reload.
func (e *Edge) Pin(ctx context.Context, confDir, env, service string, color state.Color) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	marker := filepath.Join(confDir, state.DrainMarkerFile(env, service))
	if color == "" {
		if err := atomicfile.Remove(marker); err != nil {
			return fmt.Errorf("unpin %s-%s sessions: %w", env, service, err)
		}
		e.log.Info("unpinned sessions", zap.String("site", env+"-"+service))
		return nil
	}
	if color != state.Blue && color != state.Green {
		return fmt.Errorf("pin %s-%s sessions: want color blue or green, got %q", env, service, color)
	}
	body := fmt.Sprintf("# reconciler: sessions of %s-%s that the live color does not know go to %s, which drains, while this file exists.\n", env, service, color)
	if err := atomicfile.Write(marker, []byte(body), 0o644); err != nil {
		return fmt.Errorf("pin %s-%s sessions to %s: %w (%s)", env, service, color, err, confDirHint(confDir))
	}
	e.log.Info("pinned sessions", zap.String("site", env+"-"+service), zap.String("color", string(color)))
	return nil
}

// setMarker points the site's main marker at color.
func setMarker(confDir, env, service string, color state.Color) error {
	marker := filepath.Join(confDir, state.MarkerFile(env, service))
	switch color {
	case state.Green:
		if _, err := os.Stat(marker); err == nil {
			return nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("switch %s-%s to green: %w", env, service, err)
		}
		body := fmt.Sprintf("# reconciler: %s-%s gets its traffic from green while this file exists.\n", env, service)
		if err := atomicfile.Write(marker, []byte(body), 0o644); err != nil {
			return fmt.Errorf("switch %s-%s to green: %w (%s)", env, service, err, confDirHint(confDir))
		}
	case state.Blue:
		err := os.Remove(marker)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			err = atomicfile.SyncDir(confDir)
		}
		if err != nil {
			return fmt.Errorf("switch %s-%s to blue: %w (%s)", env, service, err, confDirHint(confDir))
		}
	default:
		return fmt.Errorf("switch %s-%s: want color blue or green, got %q", env, service, color)
	}
	return nil
}

// clearCanary removes the site's canary markers except keep.
func clearCanary(confDir, env, service, keep string) error {
	matches, err := filepath.Glob(filepath.Join(confDir, state.CanaryMarkerGlob(env, service)))
	if err != nil {
		return err
	}
	removed := false
	for _, m := range matches {
		if filepath.Base(m) == keep {
			continue
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed = true
	}
	if removed {
		return atomicfile.SyncDir(confDir)
	}
	return nil
}

// Remove deletes the service's site file, tests and reloads, then deletes its
// marker. When the test or the reload fails, the file is put back and the
// error carries the command's output. A site that does not exist is not an
// error. Remove refuses a file whose header is not reconciler's for env and
// service.
func (e *Edge) Remove(ctx context.Context, confDir, env, service string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	path := filepath.Join(confDir, state.SiteFile(env, service))
	marker := filepath.Join(confDir, state.MarkerFile(env, service))
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Nothing nginx loads changes; stray markers are only files.
		for _, m := range []string{marker, filepath.Join(confDir, state.DrainMarkerFile(env, service))} {
			if err := atomicfile.Remove(m); err != nil {
				return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
			}
		}
		if err := clearCanary(confDir, env, service, ""); err != nil {
			return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
	}
	if fileEnv, fileService, _, _, _, ok := templates.ParseHeader(old); !ok || fileEnv != env || fileService != service {
		return fmt.Errorf("remove nginx site %s-%s: %s was not written by reconciler for this site; not touching it", env, service, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
	}
	if err := atomicfile.Remove(path); err != nil {
		return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
	}
	undo := func() error { return atomicfile.Write(path, old, fi.Mode().Perm()) }
	if err := e.applyOrUndo(ctx, path, undo, nil); err != nil {
		return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
	}
	// Only now: until the reload, the site kept sending traffic to its live
	// color.
	if err := atomicfile.Remove(pendingPath(path)); err != nil {
		return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
	}
	for _, m := range []string{marker, filepath.Join(confDir, state.DrainMarkerFile(env, service))} {
		if err := atomicfile.Remove(m); err != nil {
			return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
		}
	}
	if err := clearCanary(confDir, env, service, ""); err != nil {
		return fmt.Errorf("remove nginx site %s-%s: %w", env, service, err)
	}
	e.log.Info("removed nginx site and reloaded", zap.String("path", path))
	return nil
}

// Test runs the test command. A rejected configuration wraps ErrTestFailed
// with nginx's output.
func (e *Edge) Test(ctx context.Context) error {
	return e.runTest(ctx)
}

func (e *Edge) runTest(ctx context.Context) error {
	if out, err := run(ctx, e.test); err != nil {
		return commandError(ErrTestFailed, out, err)
	}
	return nil
}

func (e *Edge) runReload(ctx context.Context) error {
	if out, err := run(ctx, e.reload); err != nil {
		return fmt.Errorf("%w (check that nginx is running and that the env file's nginx.reload command works)", commandError(errReloadFailed, out, err))
	}
	return nil
}

var errReloadFailed = errors.New("nginx reload failed")

// confDirHint says what to check when a file in confDir cannot be written.
func confDirHint(confDir string) string {
	return fmt.Sprintf("check that nginx.confDir %s is writable by reconciler and its file system has free space", confDir)
}

// run runs command through sh -c within CommandTimeout and returns its
// combined output. The whole process group is killed on timeout so that a
// hanging child of the shell cannot keep it alive.
func run(ctx context.Context, command string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%q: %w", command, ctx.Err())
	} else if err != nil {
		err = fmt.Errorf("%q: %w", command, err)
	}
	return out, err
}

// commandError wraps kind and err, with the command's output made one line
// in between when it printed anything.
func commandError(kind error, out []byte, err error) error {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return fmt.Errorf("%w: %w", kind, err)
	}
	return fmt.Errorf("%w: %s (%w)", kind, strings.Join(lines, "; "), err)
}

// LogOffset returns the size of the access log at path: the position from
// which Traffic counts. A missing log is offset 0.
func (e *Edge) LogOffset(ctx context.Context, path string) (int64, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("access log: %w", err)
	}
	return fi.Size(), nil
}

// Traffic counts the requests served by color, and those answered with a
// 5xx status, in the access log at path from offset from. It returns the
// offset after the last complete line read. A log that shrank (rotated)
// is read from its start.
func (e *Edge) Traffic(ctx context.Context, path string, from int64, color state.Color) (reconciler.Traffic, int64, error) {
	var t reconciler.Traffic
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, from, nil
	}
	if err != nil {
		return t, from, fmt.Errorf("access log: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < from {
		from = 0
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return t, from, fmt.Errorf("access log: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return t, from, fmt.Errorf("access log: %w", err)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	for _, line := range strings.Split(string(data[:end]), "\n") {
		// "$msec $color $status $request_time $upstream_status
		// ut=$upstream_response_time" (request_time and ut= were added
		// later: older lines have fewer fields)
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[1] != string(color) {
			continue
		}
		t.Requests++
		if code, err := strconv.Atoi(fields[2]); err == nil && code >= 500 {
			t.Errors++
		}
		if d, ok := upstreamTime(fields); ok {
			t.Times = append(t.Times, d)
		}
	}
	return t, from + int64(end), nil
}

// upstreamTime is the upstream response time of a log line's fields: the
// value after "ut=", summed over the upstreams nginx tried ("0.010, 0.004"
// and "0.010 : 0.004" list one per try); false when nginx answered
// without an upstream ("-") or the line has no ut= field.
func upstreamTime(fields []string) (time.Duration, bool) {
	at := slices.IndexFunc(fields, func(f string) bool { return strings.HasPrefix(f, "ut=") })
	if at < 0 {
		return 0, false
	}
	var sum float64
	seen := false
	for i, f := range fields[at:] {
		if i == 0 {
			f = strings.TrimPrefix(f, "ut=")
		}
		for _, v := range strings.FieldsFunc(f, func(r rune) bool { return r == ',' || r == ':' }) {
			if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 {
				sum += secs
				seen = true
			}
		}
	}
	return time.Duration(sum * float64(time.Second)), seen
}

// Latency is the response times nginx logged for a site in a window.
type Latency struct {
	// Requests is the number of logged requests in the window that carry
	// a response time (lines written before $request_time was logged do
	// not).
	Requests int
	// P95 is the 95th percentile of $request_time (nearest rank); 0 when
	// Requests is 0.
	P95 time.Duration
}

// ResponseTimes reads the access log at path (the format of
// templates/nginx-site.conf.tmpl) and returns the latency of the requests
// whose $msec lies in [from, to), whatever color served them. A missing log
// is an empty window. It reads at most the last 64 MiB of the log.
func ResponseTimes(path string, from, to time.Time) (Latency, error) {
	var l Latency
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return l, fmt.Errorf("access log: %w", err)
	}
	defer f.Close()
	const most = 64 << 20
	seeked := false
	if fi, err := f.Stat(); err == nil && fi.Size() > most {
		if _, err := f.Seek(fi.Size()-most, io.SeekStart); err != nil {
			return l, fmt.Errorf("access log: %w", err)
		}
		seeked = true
	}
	data, err := io.ReadAll(io.LimitReader(f, most))
	if err != nil {
		return l, fmt.Errorf("access log: %w", err)
	}
	if seeked {
		// The read started inside a line.
		data = data[bytes.IndexByte(data, '\n')+1:]
	}
	lo, hi := float64(from.UnixMilli())/1000, float64(to.UnixMilli())/1000
	var times []float64
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue // torn, or written before $request_time was logged
		}
		msec, err1 := strconv.ParseFloat(fields[0], 64)
		rt, err2 := strconv.ParseFloat(fields[3], 64)
		if err1 != nil || err2 != nil || msec < lo || msec >= hi {
			continue
		}
		times = append(times, rt)
	}
	if len(times) == 0 {
		return l, nil
	}
	sort.Float64s(times)
	rank := int(math.Ceil(0.95*float64(len(times)))) - 1
	l.Requests = len(times)
	l.P95 = time.Duration(times[rank] * float64(time.Second)).Round(time.Millisecond)
	return l, nil
}
