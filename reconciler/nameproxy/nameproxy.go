// Package nameproxy holds a service's name on the environment's Docker
// network. Its container keeps the alias <service> for good and forwards
// each HTTP request to <service>-<color>, the color read from a marker
// file that apply rewrites at the switch.
//
// Moving the alias from one container to the other instead would need the
// old container to leave the network, and Docker (20.10) removes the
// interface before the name: a client that resolves the name in that
// moment connects to an address nobody answers, and one holding a
// keep-alive connection loses it. A process that never moves has neither
// problem: client connections end at it, and the switch is the rename of
// a file it reads on every request.
package nameproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/developer-mesh/reconciler/internal/atomicfile"
	"github.com/developer-mesh/reconciler/state"
)

// MarkerPath is the marker of service in dir.
func MarkerPath(dir, service string) string { return filepath.Join(dir, service) }

// ReadColor returns the color the marker at path holds; ("", nil) when
// there is no marker.
func ReadColor(path string) (state.Color, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	switch c := state.Color(strings.TrimSpace(string(b))); c {
	case state.Blue, state.Green:
		return c, nil
	default:
		return "", fmt.Errorf("name marker %s holds %q, want blue or green", path, c)
	}
}

// ReadColors returns the colors of the markers in dir, by service; a
// missing dir has none.
func ReadColors(dir string) (map[string]state.Color, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]state.Color{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read name markers: %w", err)
	}
	out := map[string]state.Color{}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := ReadColor(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if c != "" {
			out[e.Name()] = c
		}
	}
	return out, nil
}

// WriteColor points service's name at color: it replaces the marker
// atomically and durably (a reader sees the old color or the new one,
// never neither; see atomicfile.Write). color "" removes the marker.
func WriteColor(dir, service string, color state.Color) error {
	path := MarkerPath(dir, service)
	if color == "" {
		if err := atomicfile.Remove(path); err != nil {
			return fmt.Errorf("remove name marker: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("name markers: %w", err)
	}
	if err := atomicfile.Write(path, []byte(string(color)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write name marker: %w", err)
	}
	return nil
}

// Markers implements reconciler.Names with the marker files that each
// Proxy reads: one file per service in the env's names directory.
type Markers struct{}

// Point is WriteColor(dir, service, color); ctx is not used: a marker
// write does not block.
func (Markers) Point(_ context.Context, dir, service string, color state.Color) error {
	return WriteColor(dir, service, color)
}

// Colors is ReadColors(dir).
func (Markers) Colors(dir string) (map[string]state.Color, error) { return ReadColors(dir) }

// CheckPath is the path the proxy answers itself, with 200 and the color
// it forwards to (read from its marker as for any request), instead of
// forwarding: apply asks it after moving the marker, through
// reconciler.NameCheckCommand run in the proxy's container.
const CheckPath = "/.reconciler-check/name"

// Proxy forwards requests for one service to its live color.
type Proxy struct {
	Service string
	Port    int
	// Marker is the path of the service's name marker.
	Marker string
	// Upstream returns the address of color ("<service>-<color>:<port>"
	// when nil).
	Upstream func(color string) string
	// Lookup resolves an upstream's host name (net.DefaultResolver's
	// LookupHost when nil). It is given LookupTimeout.
	Lookup func(ctx context.Context, host string) ([]string, error)
	Log    *log.Logger
}

// RetryAfter is what the proxy answers, in a Retry-After header with a 503,
// when no color of its service is live: no marker, or the marked color's
// container does not resolve or refuses the connection. The request never
// reached the service, so the client may send it again.
const RetryAfter = time.Second

// LookupTimeout bounds the lookup of an upstream's name. Docker's embedded
// DNS answers the name of a container on the network at once; a name it
// does not know (the container is gone, or stopped and so off the
// network) it forwards to the host's resolvers, which may not answer
// (measured on Docker 20.10, internal network: once a 10 s timeout).
const LookupTimeout = 250 * time.Millisecond

// errNotLive marks an error of reaching the marked color before any byte
// of the request was sent: the color is not live.
type errNotLive struct{ err error }

func (e errNotLive) Error() string { return e.err.Error() }
func (e errNotLive) Unwrap() error { return e.err }

// notLive reports whether err means the request never reached the marked
// color: its name did not resolve, or the connection was refused or did
// not open.
func notLive(err error) bool {
	var nl errNotLive
	var op *net.OpError
	return errors.As(err, &nl) || errors.As(err, &op) && op.Op == "dial"
}

// unresolved remembers, for RetryAfter, the upstream hosts whose name did
// not resolve, so that the requests behind the first one are answered at
// once instead of each waiting LookupTimeout.
type unresolved struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (u *unresolved) add(host string, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.until == nil {
		u.until = map[string]time.Time{}
	}
	u.until[host] = now.Add(RetryAfter)
}

func (u *unresolved) has(host string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.until[host]
	if ok && !now.Before(t) {
		delete(u.until, host)
		return false
	}
	return ok
}

// unavailable answers 503 with Retry-After: no color of the service is
// live, and the request was not forwarded.
func unavailable(w http.ResponseWriter, service, why string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(RetryAfter/time.Second)))
	http.Error(w, "reconciler name proxy: "+service+": "+why, http.StatusServiceUnavailable)
}

// Handler returns the proxy's HTTP handler. The marker is read on every
// request, so the switch applies to the next request on every client
// connection; requests in flight finish on the color they started on.
// Responses are streamed as they come (server-sent events, long polls),
// and upgraded connections (WebSocket) are passed through.
func (p *Proxy) Handler() http.Handler {
	upstream := p.Upstream
	if upstream == nil {
		upstream = func(color string) string {
			return net.JoinHostPort(p.Service+"-"+color, strconv.Itoa(p.Port))
		}
	}
	logf := func(format string, args ...any) {
		if p.Log != nil {
			p.Log.Printf(format, args...)
		}
	}
	lookup := p.Lookup
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	var down unresolved
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || net.ParseIP(host) != nil {
			return dialer.DialContext(ctx, network, addr)
		}
		lctx, cancel := context.WithTimeout(ctx, LookupTimeout)
		ips, err := lookup(lctx, host)
		cancel()
		if err == nil && len(ips) == 0 {
			err = errors.New("no address")
		}
		if err != nil {
			down.add(host, time.Now())
			return nil, errNotLive{fmt.Errorf("%s does not resolve (no such container on the network?): %w", host, err)}
		}
		var errs []error
		for _, ip := range ips {
			c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip, port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errNotLive{fmt.Errorf("%s: %w", host, errors.Join(errs...))}
	}
	type colorKey struct{}
	rp := &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1,
		BufferPool:    &bufferPool{},
		Rewrite: func(r *httputil.ProxyRequest) {
			color, _ := r.In.Context().Value(colorKey{}).(string)
			r.SetURL(&url.URL{Scheme: "http", Host: upstream(color)})
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logf("%s %s: %v", r.Method, r.URL.Path, err)
			if notLive(err) {
				unavailable(w, p.Service, "no live color: "+err.Error())
				return
			}
			http.Error(w, "reconciler name proxy: "+p.Service+": "+err.Error(), http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		color, err := ReadColor(p.Marker)
		if err == nil && color == "" {
			err = errors.New("no live color yet")
		}
		if err != nil {
			logf("%s %s: %v", r.Method, r.URL.Path, err)
			unavailable(w, p.Service, err.Error())
			return
		}
		if r.URL.Path == CheckPath {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintln(w, color)
			return
		}
		if host, _, err := net.SplitHostPort(upstream(string(color))); err == nil && down.has(host, time.Now()) {
			// Its name did not resolve a moment ago: answer at once
			// rather than wait for the lookup again.
			unavailable(w, p.Service, "no live color: "+host+" did not resolve less than "+RetryAfter.String()+" ago")
			return
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), colorKey{}, string(color))))
	})
}

// Serve listens on addr and serves the proxy until ctx ends, then lets
// requests in flight finish (for up to grace).
func (p *Proxy) Serve(ctx context.Context, addr string, grace time.Duration) error {
	srv := &http.Server{Addr: addr, Handler: p.Handler(), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return srv.Shutdown(sctx)
}

// bufferPool reuses the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// Check asks the proxy listening on port (on 127.0.0.1) which color it
// forwards to, by CheckPath, and writes its answer to w: what apply runs
// inside the proxy's container after moving its marker. It fails unless
// the proxy answers 200 within 2 s.
func Check(ctx context.Context, w io.Writer, port int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+CheckPath, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check: status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	_, err = fmt.Fprint(w, string(b))
	return err
}
