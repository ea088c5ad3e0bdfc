package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// zeros is an endless body, read in chunks: the sender holds none of it.
type zeros struct{ left int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.left)
	clear(p[:n])
	z.left -= n
	return int(n), nil
}

// TestWebhookMemoryBounded: twenty concurrent 4 MB deliveries with a bad
// signature (chunked, so no Content-Length gives them away) are hashed
// while read: the handler allocates a small fraction of what it is sent.
// Before, each body was read whole into memory first.
func TestWebhookMemoryBounded(t *testing.T) {
	secret := []byte("hook-secret")
	a := start(t, &fake{tip: "a"}, func(c *Config) { c.Interval = time.Hour })
	srv := httptest.NewServer(a.Handler(WebhookConfig{Secret: secret, Branch: "main", Concurrency: 20}))
	t.Cleanup(srv.Close)
	const n, size = 20, 4 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", srv.URL+"/hooks/github", io.NopCloser(&zeros{left: size}))
			req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("00", 32))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	for i, c := range codes {
		if c != http.StatusUnauthorized {
			t.Errorf("delivery %d: %d, want 401", i, c)
		}
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > n*size/4 {
		t.Fatalf("allocated %d MB for %d MB of bad deliveries; want well under a quarter", got>>20, n*size>>20)
	}
}

// TestWebhookLimits: a body over MaxBody gets 413, a missing signature 401
// before the body is read, and a delivery beyond Concurrency 503.
func TestWebhookLimits(t *testing.T) {
	t.Parallel()
	secret := []byte("hook-secret")
	a := start(t, &fake{tip: "a"}, func(c *Config) { c.Interval = time.Hour })
	srv := httptest.NewServer(a.Handler(WebhookConfig{Secret: secret, Branch: "main", MaxBody: 1 << 20, Concurrency: 1}))
	t.Cleanup(srv.Close)
	post := func(body io.Reader, sig string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/hooks/github", body)
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	sig := "sha256=" + strings.Repeat("00", 32)
	if c := post(strings.NewReader(strings.Repeat("a", 2<<20)), sig); c != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MB with Content-Length: %d, want 413", c)
	}
	if c := post(io.NopCloser(&zeros{left: 2 << 20}), sig); c != http.StatusRequestEntityTooLarge && c != -1 {
		t.Errorf("2 MB chunked: %d, want 413", c)
	}
	if c := post(strings.NewReader("{}"), ""); c != http.StatusUnauthorized {
		t.Errorf("no signature: %d, want 401", c)
	}
	// One delivery held open fills the only slot, and a second one gets
	// 503. The held one's handler may start after a probe's: that probe
	// then had the slot, the held one got 503 and ended, and it is held
	// again.
	for try := 1; ; try++ {
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() { done <- post(pr, sig) }()
		pw.Write([]byte("{")) // sent; its handler takes the slot
		busy, lost := false, false
		for deadline := time.Now().Add(5 * time.Second); !busy && !lost && time.Now().Before(deadline); {
			select {
			case c := <-done:
				if c != http.StatusServiceUnavailable {
					t.Fatalf("held delivery ended while held: %d", c)
				}
				lost = true
			default:
				busy = post(strings.NewReader("{}"), sig) == http.StatusServiceUnavailable
			}
		}
		pw.Close()
		if lost && try < 10 {
			continue
		}
		if !busy {
			t.Fatalf("a second delivery while one is read never got 503 (%d tries)", try)
		}
		if c := <-done; c != http.StatusUnauthorized {
			t.Errorf("held delivery: %d, want 401", c)
		}
		return
	}
}
