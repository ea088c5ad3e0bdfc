package mcptest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Counts is what a Client saw.
type Counts struct {
	Calls    int `json:"calls"`    // tools/call requests sent
	OK       int `json:"ok"`       // answered with a result
	NotFound int `json:"notFound"` // 404s: the session was not known (calls and stream opens)
	Errors   int `json:"errors"`   // any other failure: transport, status, body
	Inits    int `json:"inits"`    // sessions initialized
	// StreamBreaks counts the streams that ended without the client
	// closing them.
	StreamBreaks int `json:"streamBreaks"`
	Events       int `json:"events"` // events received on streams
}

// Answer is one tools/call's outcome.
type Answer struct {
	At      time.Time
	Status  int    // HTTP status; 0 for a transport error
	Version string // the answering server's version, on success
	Session string // the session the call carried
}

// Client is an MCP client: it initializes a session, calls a tool every
// CallEvery and holds one event stream, starting a new session when the
// server answers 404, as the protocol asks. It never retries a call.
type Client struct {
	// URL is the server's base URL, "http://127.0.0.1:8080".
	URL string
	// CallEvery is the pause between tool calls; 0 makes no calls.
	CallEvery time.Duration

	calls, streams *http.Client
	cancel         context.CancelFunc
	stopStream     context.CancelFunc
	wg             sync.WaitGroup

	mu      sync.Mutex
	session string
	counts  Counts
	answers []Answer
	up      bool // the stream is open
}

// Start initializes a session, opens the stream and starts calling. The
// client runs until Stop.
func (c *Client) Start(ctx context.Context) error {
	c.calls = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	c.streams = &http.Client{Transport: &http.Transport{}}
	ctx, c.cancel = context.WithCancel(ctx)
	if err := c.initialize(ctx, ""); err != nil {
		c.cancel()
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	c.stopStream = stop
	c.wg.Add(1)
	go c.hold(sctx)
	if c.CallEvery > 0 {
		c.wg.Add(1)
		go c.call(ctx)
	}
	return nil
}

// StreamUp reports whether the stream is open now.
func (c *Client) StreamUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up
}

// CloseStream closes the stream; that is not a break.
func (c *Client) CloseStream() { c.stopStream() }

// Stop ends the client and returns what it saw.
func (c *Client) Stop() Counts {
	c.cancel()
	c.wg.Wait()
	return c.Counts()
}

// Counts returns what the client saw so far.
func (c *Client) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

// Answers returns the outcome of every call so far, in order.
func (c *Client) Answers() []Answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Answer(nil), c.answers...)
}

func (c *Client) current() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

func (c *Client) count(f func(*Counts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.counts)
}

// initialize starts a new session unless the current one is no longer
// stale (another goroutine started one already).
func (c *Client) initialize(ctx context.Context, stale string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != stale {
		return nil
	}
	body := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcptest","version":"1"}}}`
	resp, err := c.post(ctx, "", body)
	if err != nil {
		c.counts.Errors++
		return fmt.Errorf("initialize: %w", err)
	}
	resp.Body.Close()
	id := resp.Header.Get(SessionHeader)
	if resp.StatusCode != http.StatusOK || id == "" {
		c.counts.Errors++
		return fmt.Errorf("initialize: status %d, session %q", resp.StatusCode, id)
	}
	c.session = id
	c.counts.Inits++
	if resp, err := c.post(ctx, id, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); err == nil {
		resp.Body.Close()
	}
	return nil
}

func (c *Client) post(ctx context.Context, session, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+Path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set(SessionHeader, session)
	}
	return c.calls.Do(req)
}

// call sends a tools/call every CallEvery until ctx is done.
func (c *Client) call(ctx context.Context) {
	defer c.wg.Done()
	t := time.NewTicker(c.CallEvery)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		session := c.current()
		a := Answer{Session: session}
		resp, err := c.post(ctx, session, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"version","arguments":{}}}`, n))
		if ctx.Err() != nil {
			if err == nil {
				resp.Body.Close()
			}
			return
		}
		c.count(func(k *Counts) { k.Calls++ })
		if err == nil {
			a.Status = resp.StatusCode
			var out struct {
				Result struct {
					Content []struct{ Text string } `json:"content"`
				} `json:"result"`
			}
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK && json.Unmarshal(b, &out) == nil && len(out.Result.Content) == 1 {
				a.Version = strings.TrimPrefix(out.Result.Content[0].Text, "version=")
			}
		}
		a.At = time.Now()
		c.mu.Lock()
		c.answers = append(c.answers, a)
		switch {
		case a.Version != "":
			c.counts.OK++
		case a.Status == http.StatusNotFound:
			c.counts.NotFound++
		default:
			c.counts.Errors++
		}
		c.mu.Unlock()
		if a.Status == http.StatusNotFound {
			_ = c.initialize(ctx, session)
		}
	}
}

// hold keeps one stream open on the current session until ctx is done,
// opening it again after a break.
func (c *Client) hold(ctx context.Context) {
	defer c.wg.Done()
	for ctx.Err() == nil {
		session := c.current()
		err := c.stream(ctx, session)
		if ctx.Err() != nil {
			return
		}
		var nf notFound
		if errors.As(err, &nf) {
			c.count(func(k *Counts) { k.NotFound++ })
			_ = c.initialize(ctx, session)
			continue
		}
		if err != nil {
			c.count(func(k *Counts) { k.Errors++ })
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type notFound struct{}

func (notFound) Error() string { return "404: session not known" }

// stream opens the stream on session and reads it until it ends: nil or
// an error for a stream that could not open, errBroken counted as a
// break for one that opened and ended while ctx was not done.
func (c *Client) stream(ctx context.Context, session string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(SessionHeader, session)
	resp, err := c.streams.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return notFound{}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream: status %d", resp.StatusCode)
	}
	c.mu.Lock()
	c.up = true
	c.mu.Unlock()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("data: ")) {
			c.count(func(k *Counts) { k.Events++ })
		}
	}
	c.mu.Lock()
	c.up = false
	if ctx.Err() == nil {
		c.counts.StreamBreaks++
	}
	c.mu.Unlock()
	return nil
}
