// Command webhookflood posts N concurrent deliveries of SIZE bytes with a
// bad signature to an agent's /hooks/github (chunked, so no
// Content-Length announces the size) and prints the status codes. It is
// the load of bench/webhook-flood.sh.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

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

func main() {
	url := flag.String("url", "", "http://127.0.0.1:PORT/hooks/github")
	n := flag.Int("n", 20, "concurrent deliveries")
	size := flag.Int64("size", 24<<20, "bytes per delivery")
	flag.Parse()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", *url, io.NopCloser(&zeros{left: *size}))
			req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("00", 32))
			req.Header.Set("X-GitHub-Event", "push")
			code := "error"
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				code = fmt.Sprint(resp.StatusCode)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Println("responses:", codes)
	if len(codes) == 0 {
		os.Exit(1)
	}
}
