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
	Log      *log.Logger
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
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
			http.Error(w, "reconciler name proxy: "+p.Service+": "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == CheckPath {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintln(w, color)
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
