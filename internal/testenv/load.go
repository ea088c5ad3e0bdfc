package testenv

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Load sends requests to one URL from keep-alive connections until End,
// never retrying (POST is not replayed by net/http), and counts them. Each
// connection sends at most one request every LoadPace: a steady load that
// leaves the machine's cores to the hosts under test (several tests share
// a 2-core machine), not a stress test.
type Load struct {
	// URL is where the requests go.
	URL string
	// OK and Failed count the answers 200 and everything else (errors
	// included).
	OK, Failed atomic.Int64

	mu       sync.Mutex
	versions map[string]int
	errs     []string
	stop     chan struct{}
	done     sync.WaitGroup
}

// LoadPace is the shortest time between two requests of one connection.
const LoadPace = 20 * time.Millisecond

// StartLoad sends POST requests to url from conns keep-alive connections
// until End (called in t.Cleanup as well), for at most limit.
func StartLoad(t testing.TB, url string, conns int, limit time.Duration) *Load {
	l := &Load{URL: url, versions: map[string]int{}, stop: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit) // bounded even if End is never called
	for i := 0; i < conns; i++ {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			pace := time.NewTicker(LoadPace)
			defer pace.Stop()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				case <-pace.C: // pacing, not synchronisation
				}
				resp, err := c.Post(url, "text/plain", nil)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					l.fail(fmt.Sprintf("status %d: %s", resp.StatusCode, b))
					continue
				}
				l.OK.Add(1)
				v, _, _ := strings.Cut(strings.TrimPrefix(string(b), "version="), " ")
				l.mu.Lock()
				l.versions[v]++
				l.mu.Unlock()
			}
			tr.CloseIdleConnections()
		}()
	}
	t.Cleanup(l.End)
	return l
}

func (l *Load) fail(msg string) {
	l.Failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, msg)
	}
	l.mu.Unlock()
}

// End stops the load and waits for the requests in flight.
func (l *Load) End() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
}

// Errors returns the first few failures.
func (l *Load) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// Versions returns how many answers each version ("version=V" in the
// body) gave.
func (l *Load) Versions() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.versions))
	for k, v := range l.versions {
		out[k] = v
	}
	return out
}
