package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

// fixture is a private nginx with an Edge whose test and reload commands
// count their runs.
type fixture struct {
	n    *testenv.Nginx
	edge *Edge
	dir  string // counters
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	n := testenv.StartNginx(t)
	dir := t.TempDir()
	f := &fixture{n: n, dir: dir}
	f.edge = New(
		fmt.Sprintf("echo x >> %s/tests && %s", dir, n.Test),
		fmt.Sprintf("echo x >> %s/reloads && %s", dir, n.Reload),
		zaptest.NewLogger(t))
	return f
}

func (f *fixture) count(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "x\n")
}

func (f *fixture) reloads(t *testing.T) int { return f.count(t, "reloads") }
func (f *fixture) tests(t *testing.T) int   { return f.count(t, "tests") }

// site renders env-service listening on 127.0.0.1:listen.
func (f *fixture) site(t *testing.T, env, service string, blue, green, listen int) (string, []byte) {
	t.Helper()
	content, err := templates.Site(templates.SiteParams{
		Env: env, Service: service, ConfDir: f.n.ConfDir,
		BluePort: blue, GreenPort: green, Listen: &state.Listen{Host: "127.0.0.1", Port: listen},
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(f.n.ConfDir, state.SiteFile(env, service)), content
}

// serve writes prod-api with the blue and green backends through f.edge and
// waits until nginx serves blue. It returns the site's file, its content and
// the URL nginx serves it on.
func (f *fixture) serve(t *testing.T, blue, green *backend) (path string, content []byte, url string) {
	t.Helper()
	listen := testenv.FreePort(t)
	url = fmt.Sprintf("http://127.0.0.1:%d/", listen)
	path, content = f.site(t, "prod", "api", blue.port, green.port, listen)
	if err := f.edge.Write(context.Background(), path, content, nil); err != nil {
		t.Fatalf("Write: %v", err)
	}
	waitBody(t, url, "blue")
	return path, content, url
}

// backend is an HTTP server on a loopback port that answers its name and
// counts requests.
type backend struct {
	port int
	hits atomic.Int64
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	b.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return b
}

func get(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitBody polls url until it answers 200 with want; a reload takes effect
// asynchronously.
func waitBody(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body, err := get(url)
		if err == nil && code == 200 && body == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %q %v, want 200 %q", url, code, body, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustBody(t *testing.T, url, want string) {
	t.Helper()
	code, body, err := get(url)
	if err != nil || code != 200 || body != want {
		t.Fatalf("GET %s = %d %q %v, want 200 %q", url, code, body, err, want)
	}
}

func TestWriteOnlyWhenBytesChange(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	listen := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", listen)
	path, content := f.site(t, "prod", "api", blue.port, green.port, listen)

	if err := f.edge.Write(ctx, path, content, nil); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := f.reloads(t); got != 1 {
		t.Fatalf("reloads after first Write = %d, want 1", got)
	}
	waitBody(t, url, "blue")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("new site mode = %v %v, want 0644", fi.Mode(), err)
	}

	if err := f.edge.Write(ctx, path, content, nil); err != nil {
		t.Fatalf("Write same bytes: %v", err)
	}
	if tests, reloads := f.tests(t), f.reloads(t); tests != 1 || reloads != 1 {
		t.Fatalf("after Write of the same bytes: %d tests, %d reloads; want 1 and 1", tests, reloads)
	}

	// A changed file keeps the mode an operator gave it.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, changed := f.site(t, "prod", "api", green.port, blue.port, listen) // ports swapped
	if err := f.edge.Write(ctx, path, changed, nil); err != nil {
		t.Fatalf("Write changed: %v", err)
	}
	if got := f.reloads(t); got != 2 {
		t.Fatalf("reloads after changed Write = %d, want 2", got)
	}
	waitBody(t, url, "green")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode after rewrite = %v %v, want 0640", fi.Mode(), err)
	}
	assertNoTempFiles(t, f.n.ConfDir)
}

func TestWriteBadConfigRestores(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	path, good, url := f.serve(t, blue, green)

	bad := append(append([]byte{}, good...), "bogus_directive on;\n"...)
	err := f.edge.Write(ctx, path, bad, nil)
	if !errors.Is(err, ErrTestFailed) {
		t.Fatalf("Write(bad) = %v, want ErrTestFailed", err)
	}
	for _, want := range []string{`unknown directive "bogus_directive"`, "restored " + path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	t.Logf("error: %v", err)
	if onDisk, _ := os.ReadFile(path); string(onDisk) != string(good) {
		t.Fatalf("file after failed Write is not the previous one:\n%s", onDisk)
	}
	if got := f.reloads(t); got != 1 {
		t.Fatalf("reloads = %d, want 1 (none after the failed test)", got)
	}
	mustBody(t, url, "blue")

	// A new file that fails the test is removed again.
	newPath := filepath.Join(f.n.ConfDir, state.SiteFile("prod", "web"))
	err = f.edge.Write(ctx, newPath, []byte("upstream {\n"), nil)
	if !errors.Is(err, ErrTestFailed) {
		t.Fatalf("Write(new bad) = %v, want ErrTestFailed", err)
	}
	if _, statErr := os.Stat(newPath); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("new bad file still there: %v", statErr)
	}
	// The instance still passes its test and serves.
	if err := f.edge.Test(ctx); err != nil {
		t.Fatalf("Test after restores: %v", err)
	}
	mustBody(t, url, "blue")
	assertNoTempFiles(t, f.n.ConfDir)
}

func TestWriteReloadFailureRestores(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	path, content := f.site(t, "prod", "api", 20001, 20002, testenv.FreePort(t))
	edge := New(f.n.Test, "echo 'nginx: [error] signal failed' >&2; exit 1", zaptest.NewLogger(t))
	err := edge.Write(ctx, path, content, nil)
	if err == nil || !strings.Contains(err.Error(), "nginx reload failed: nginx: [error] signal failed") || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Write with failing reload = %v", err)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		t.Fatalf("file kept after failed reload: %v", statErr)
	}
}

func TestSwitchMovesTrafficWithoutReload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	_, _, url := f.serve(t, blue, green)
	reloads := f.reloads(t)

	for _, color := range []state.Color{state.Green, state.Green, state.Blue, state.Blue, state.Green} {
		if err := f.edge.Switch(ctx, f.n.ConfDir, "prod", "api", color); err != nil {
			t.Fatalf("Switch(%s): %v", color, err)
		}
		// No polling: the next request already goes to the new color.
		mustBody(t, url, string(color))
		sites, err := f.edge.Observe(ctx, "prod", f.n.ConfDir)
		if err != nil || len(sites) != 1 || sites[0].Live != color {
			t.Fatalf("Observe after Switch(%s) = %+v, %v", color, sites, err)
		}
	}
	if got := f.reloads(t); got != reloads {
		t.Fatalf("Switch reloaded nginx: %d reloads, want %d", got, reloads)
	}
	if err := f.edge.Switch(ctx, f.n.ConfDir, "prod", "api", "red"); err == nil {
		t.Fatal("Switch(red) succeeded")
	}
	assertNoTempFiles(t, f.n.ConfDir)
}

func TestRemove(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	listen := testenv.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", listen)
	path, content := f.site(t, "prod", "api", blue.port, green.port, listen)
	if err := f.edge.Write(ctx, path, content, nil); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := f.edge.Switch(ctx, f.n.ConfDir, "prod", "api", state.Green); err != nil {
		t.Fatal(err)
	}
	waitBody(t, url, "green")
	marker := filepath.Join(f.n.ConfDir, state.MarkerFile("prod", "api"))

	// A failing test puts the file back and keeps the marker.
	failing := New("echo 'nginx: [emerg] simulated' >&2; exit 1", f.n.Reload, zaptest.NewLogger(t))
	err := failing.Remove(ctx, f.n.ConfDir, "prod", "api")
	if !errors.Is(err, ErrTestFailed) || !strings.Contains(err.Error(), "simulated") || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Remove with failing test = %v", err)
	}
	if onDisk, _ := os.ReadFile(path); string(onDisk) != string(content) {
		t.Fatal("file not restored after failed Remove")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("marker gone after failed Remove: %v", err)
	}

	reloads := f.reloads(t)
	if err := f.edge.Remove(ctx, f.n.ConfDir, "prod", "api"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, p := range []string{path, marker} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Remove: %v", p, err)
		}
	}
	if got := f.reloads(t); got != reloads+1 {
		t.Fatalf("reloads = %d, want %d", got, reloads+1)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := get(url); err != nil {
			break // nginx no longer listens for the site
		}
		if time.Now().After(deadline) {
			t.Fatal("site still served 5s after Remove")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Removing what is not there is a no-op.
	if err := f.edge.Remove(ctx, f.n.ConfDir, "prod", "api"); err != nil {
		t.Fatalf("Remove again: %v", err)
	}
	if got := f.reloads(t); got != reloads+1 {
		t.Fatalf("Remove of a missing site reloaded")
	}

	// A file with our name but not our header is not ours.
	foreign := []byte("# hand-written\n")
	if err := os.WriteFile(path, foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.edge.Remove(ctx, f.n.ConfDir, "prod", "api"); err == nil || !strings.Contains(err.Error(), "not written by reconciler") {
		t.Fatalf("Remove of a foreign file = %v", err)
	}
	if onDisk, _ := os.ReadFile(path); string(onDisk) != string(foreign) {
		t.Fatal("foreign file touched")
	}
}

func TestObserve(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	edge := New("true", "true", zaptest.NewLogger(t))

	render := func(p templates.SiteParams) []byte {
		t.Helper()
		p.ConfDir = dir
		b, err := templates.Site(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	api := render(templates.SiteParams{Env: "prod", Service: "api", BluePort: 21001, GreenPort: 21002, Listen: &state.Listen{Port: 80}})
	mcp := render(templates.SiteParams{Env: "prod", Service: "mcp", BluePort: 21003, GreenPort: 21004, Listen: &state.Listen{Port: 80}})
	worker := render(templates.SiteParams{Env: "prod", Service: "internal", BluePort: 21005, GreenPort: 21006, Live: state.Green})
	files := map[string][]byte{
		"prod-mcp.conf":       mcp,
		"prod-api.conf":       api,
		"prod-internal.conf":  worker,
		"prod-mcp.green":      []byte("marker\n"),
		"prod-internal.green": []byte("ignored for upstream-only\n"),
		"prod-legacy.conf":    []byte("server { listen 80; }\n"),                                                                                        // no header: not ours
		"prod-eu-api.conf":    render(templates.SiteParams{Env: "prod-eu", Service: "api", BluePort: 1, GreenPort: 2, Listen: &state.Listen{Port: 80}}), // another env
		"prod-api-old.conf":   api,                                                                                                                      // a copy under another name
		"staging-api.conf":    render(templates.SiteParams{Env: "staging", Service: "api", BluePort: 1, GreenPort: 2, Listen: &state.Listen{Port: 80}}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "prod-dir.conf"), 0o755); err != nil {
		t.Fatal(err)
	}

	sites, err := edge.Observe(ctx, "prod", dir)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	want := []state.Site{
		{Service: "api", Path: filepath.Join(dir, "prod-api.conf"), Content: api, Live: state.Blue, BluePort: 21001, GreenPort: 21002},
		{Service: "internal", Path: filepath.Join(dir, "prod-internal.conf"), Content: worker, Live: state.Green, BluePort: 21005, GreenPort: 21006},
		{Service: "mcp", Path: filepath.Join(dir, "prod-mcp.conf"), Content: mcp, Live: state.Green, BluePort: 21003, GreenPort: 21004},
	}
	if got, w := fmt.Sprintf("%+v", sites), fmt.Sprintf("%+v", want); got != w {
		t.Fatalf("Observe =\n%s\nwant\n%s", got, w)
	}

	sites, err = edge.Observe(ctx, "prod", filepath.Join(dir, "missing"))
	if err != nil || len(sites) != 0 {
		t.Fatalf("Observe(missing dir) = %v, %v; want nothing", sites, err)
	}
}

// TestZeroDowntimeSwitch flips traffic between two backends several times
// under keep-alive load from a client that never retries, and requires every
// request to succeed.
func TestZeroDowntimeSwitch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	_, _, url := f.serve(t, blue, green)
	reloads := f.reloads(t)

	const (
		clients  = 16
		duration = 3 * time.Second
		flipEach = 200 * time.Millisecond
	)
	res := runLoad(clients, duration, url, func(stop <-chan struct{}) int {
		flips := 0
		color := state.Blue
		tick := time.NewTicker(flipEach)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return flips
			case <-tick.C:
				color = color.Other()
				if err := f.edge.Switch(ctx, f.n.ConfDir, "prod", "api", color); err != nil {
					t.Errorf("Switch(%s): %v", color, err)
					return flips
				}
				flips++
			}
		}
	})
	t.Logf("zero-downtime switch: %d requests in %s over %d keep-alive clients, %d failed, %d marker flips; blue served %d, green %d; %d new connections",
		res.requests, duration, clients, res.failed, res.flips, blue.hits.Load(), green.hits.Load(), res.newConns)
	if res.failed != 0 {
		t.Errorf("%d of %d requests failed; first: %s", res.failed, res.requests, res.firstErr)
	}
	if res.flips < 6 {
		t.Errorf("only %d flips happened", res.flips)
	}
	if blue.hits.Load() == 0 || green.hits.Load() == 0 {
		t.Errorf("a backend got no traffic: blue %d, green %d", blue.hits.Load(), green.hits.Load())
	}
	// The load must really be keep-alive: nearly every request reuses a
	// connection (nginx closes one after keepalive_requests, 1000).
	if res.newConns*100 > res.requests {
		t.Errorf("%d new client connections for %d requests: keep-alive is not in effect", res.newConns, res.requests)
	}
	if got := f.reloads(t); got != reloads {
		t.Errorf("nginx reloaded %d times during the switches", got-reloads)
	}
}

// TestLoadSeesReloadErrors is the control for TestZeroDowntimeSwitch: the
// same load with plain nginx reloads instead of marker flips must count
// failures, or the zero above proves nothing. (An nginx reload closes idle
// keep-alive client connections; a request sent on one just then is lost.)
func TestLoadSeesReloadErrors(t *testing.T) {
	f := newFixture(t)
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	_, _, url := f.serve(t, blue, green)
	res := runLoad(16, 2*time.Second, url, func(stop <-chan struct{}) int {
		reloads := 0
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return reloads
			case <-tick.C:
				if out, err := exec.Command("sh", "-c", f.n.Reload).CombinedOutput(); err != nil {
					t.Errorf("reload: %v: %s", err, out)
					return reloads
				}
				reloads++
			}
		}
	})
	t.Logf("control, reloads instead of marker flips: %d requests, %d failed (first: %s), %d reloads",
		res.requests, res.failed, res.firstErr, res.flips)
	if res.failed == 0 {
		t.Errorf("no failed request in %d across %d reloads: the load cannot see keep-alive errors", res.requests, res.flips)
	}
}

type loadResult struct {
	requests, failed, newConns int64
	flips                      int
	firstErr                   string
}

// runLoad sends GETs to url from clients goroutines sharing one keep-alive
// transport for duration, while during runs. A request counts as failed when
// it errors, answers other than 200, or was sent more than once (Go's
// transport silently retries some requests on a reused connection; a client
// like wrk does not, so neither may this count).
func runLoad(clients int, duration time.Duration, url string, during func(stop <-chan struct{}) int) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}

	var (
		res     loadResult
		mu      sync.Mutex
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		flipped = make(chan int, 1)
	)
	fail := func(msg string) {
		atomic.AddInt64(&res.failed, 1)
		mu.Lock()
		if res.firstErr == "" {
			res.firstErr = msg
		}
		mu.Unlock()
	}
	go func() { flipped <- during(stop) }()
	deadline := time.Now().Add(duration)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var conns int
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					conns++
					if !info.Reused {
						atomic.AddInt64(&res.newConns, 1)
					}
				}}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
				atomic.AddInt64(&res.requests, 1)
				resp, err := client.Do(req)
				if err != nil {
					fail(err.Error())
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					fail("read body: " + err.Error())
				case resp.StatusCode != http.StatusOK:
					fail("status " + resp.Status)
				case conns > 1:
					fail("the transport retried the request on a new connection")
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	res.flips = <-flipped
	return res
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestCommandTimeoutKillsTheCommand(t *testing.T) {
	edge := New("sleep 30; true", "true", zaptest.NewLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := edge.Test(ctx)
	if !errors.Is(err, ErrTestFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Test with a hanging command = %v, want ErrTestFailed and DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Test returned after %s; the command was not killed", took)
	}
}

// loadedCheck polls the site's check path like apply does.
func loadedCheck(listen int, content []byte) func(context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", listen, templates.CheckPath(content))
	return func(ctx context.Context) error {
		deadline := time.Now().Add(3 * time.Second)
		for {
			code, _, err := get(url)
			if err == nil && code == 204 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("check %s: %d %v", url, code, err)
			}
			time.Sleep(20 * time.Millisecond) // polling an external process, as apply does
		}
	}
}

func TestWriteWaitsUntilServed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue := newBackend(t, "blue")
	listen := testenv.FreePort(t)
	path, content := f.site(t, "prod", "api", blue.port, blue.port+1, listen)
	if err := f.edge.Write(ctx, path, content, loadedCheck(listen, content)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	// Served at once after Write returns: no polling here.
	mustBody(t, fmt.Sprintf("http://127.0.0.1:%d/", listen), "blue")
}

// A listen address in use passes nginx -t, but nginx cannot load the file:
// Write notices, restores the old file and reloads it.
func TestWriteNotLoadedRestores(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue := newBackend(t, "blue")
	listen := testenv.FreePort(t)
	path, good := f.site(t, "prod", "api", blue.port, blue.port+1, listen)
	if err := f.edge.Write(ctx, path, good, loadedCheck(listen, good)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	_, moved := f.site(t, "prod", "api", blue.port, blue.port+1, busy)
	err = f.edge.Write(ctx, path, moved, loadedCheck(busy, moved))
	if err == nil || !strings.Contains(err.Error(), "nginx did not start serving") || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("Write to a busy port: %v, want a not-loaded error that restored the file", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, good) {
		t.Fatalf("file not restored")
	}
	if err := loadedCheck(listen, good)(ctx); err != nil {
		t.Fatalf("old file not served after the restore: %v", err)
	}
}

// TestShiftSplitsTraffic: canary markers send the configured share of
// requests to the new color, measured through nginx over 2,000 requests;
// clearing them (an abort) sends none.
func TestShiftSplitsTraffic(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	blue, green := newBackend(t, "blue"), newBackend(t, "green")
	listen := testenv.FreePort(t)
	content, err := templates.Site(templates.SiteParams{
		Env: "prod", Service: "api", ConfDir: f.n.ConfDir, BluePort: blue.port, GreenPort: green.port,
		Listen: &state.Listen{Host: "127.0.0.1", Port: listen}, Canary: []int{10, 50},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.n.ConfDir, state.SiteFile("prod", "api"))
	if err := f.edge.Write(ctx, path, content, loadedCheck(listen, content)); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", listen)
	share := func() float64 {
		t.Helper()
		const n = 2000
		var mu sync.Mutex
		greens := 0
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n/8; i++ {
					_, body, err := get(url)
					if err != nil {
						t.Error(err)
						return
					}
					if body == "green" {
						mu.Lock()
						greens++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		return 100 * float64(greens) / n
	}
	reloads := f.reloads(t)
	for _, step := range []struct {
		percent int
		want    float64
	}{{10, 10}, {50, 50}} {
		if err := f.edge.Shift(ctx, f.n.ConfDir, "prod", "api", state.Green, step.percent); err != nil {
			t.Fatal(err)
		}
		got := share()
		t.Logf("canary %d%%: %.1f%% of 2000 requests went to green", step.percent, got)
		if got < step.want-5 || got > step.want+5 {
			t.Fatalf("canary %d%%: green got %.1f%%, want within 5 points", step.percent, got)
		}
	}
	// Abort at 50%: back to blue, no canary marker left.
	if err := f.edge.Switch(ctx, f.n.ConfDir, "prod", "api", state.Blue); err != nil {
		t.Fatal(err)
	}
	if got := share(); got != 0 {
		t.Fatalf("after the abort green still got %.1f%%", got)
	}
	// Full switch from a canary step.
	if err := f.edge.Shift(ctx, f.n.ConfDir, "prod", "api", state.Green, 50); err != nil {
		t.Fatal(err)
	}
	if err := f.edge.Switch(ctx, f.n.ConfDir, "prod", "api", state.Green); err != nil {
		t.Fatal(err)
	}
	if got := share(); got != 100 {
		t.Fatalf("after the switch green got %.1f%%, want 100", got)
	}
	if matches, _ := filepath.Glob(filepath.Join(f.n.ConfDir, state.CanaryMarkerGlob("prod", "api"))); len(matches) != 0 {
		t.Fatalf("canary markers left: %v", matches)
	}
	if f.reloads(t) != reloads {
		t.Fatalf("shifting traffic reloaded nginx")
	}
}
