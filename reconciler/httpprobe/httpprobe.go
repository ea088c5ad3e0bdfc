// Package httpprobe implements reconciler.Prober with plain HTTP GETs on
// loopback.
package httpprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
)

var _ reconciler.Prober = (*Prober)(nil)

// Prober sends health checks. Each check opens a new connection, so a check
// says whether the service accepts connections now, not whether an old one
// still works. Redirects are not followed: a 3xx answer passes.
type Prober struct {
	client *http.Client
}

// New returns a Prober.
func New() *Prober {
	return &Prober{client: &http.Client{
		Transport: &http.Transport{
			Proxy:             nil, // health checks go straight to loopback
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Check sends GET http://127.0.0.1:<port><path> and returns nil when a 2xx
// or 3xx answer arrives within timeout (timeout <= 0 means only ctx bounds
// it). The error names the status, or the connection problem, briefly.
func (p *Prober) Check(ctx context.Context, port int, path string, timeout time.Duration) error {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + path
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("health check %s: %w", target, err)
	}
	req.Header.Set("User-Agent", "reconciler-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("health check %s: %w", target, brief(err, timeout))
	}
	defer resp.Body.Close()
	// Drain a little so the server sees a clean request; the body is not used.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("health check %s: status %s", target, resp.Status)
	}
	return nil
}

// brief drops the url.Error wrapper, which repeats the method and URL, and
// names a timeout as such.
func brief(err error, timeout time.Duration) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) && timeout > 0 {
		return fmt.Errorf("no answer within %s: %w", timeout, err)
	}
	return err
}

// Smoke sends GET r.URL with r.Host as the Host header and TLS server name
// and returns nil when the status is r.WantStatus (and, when r.WantBody is
// set, the body without surrounding white space is r.WantBody). It checks nginx on
// loopback, so the certificate is not verified (its name is the public one).
func (p *Prober) Smoke(ctx context.Context, r reconciler.SmokeRequest, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return err
	}
	if r.Host != "" {
		req.Host = r.Host
	}
	resp, err := p.smokeClient(r.Host).Do(req)
	if err != nil {
		return brief(err, timeout)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != r.WantStatus {
		return fmt.Errorf("GET %s: status %d, want %d", r.URL, resp.StatusCode, r.WantStatus)
	}
	if got := strings.TrimSpace(string(body)); r.WantBody != "" && got != r.WantBody {
		return fmt.Errorf("GET %s answered %q, want %q", r.URL, got, r.WantBody)
	}
	return nil
}

// Get sends GET r.URL as Smoke does and returns the status and the body
// (at most 1 MiB, surrounding white space trimmed), whatever they are.
func (p *Prober) Get(ctx context.Context, r reconciler.SmokeRequest, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return 0, "", err
	}
	if r.Host != "" {
		req.Host = r.Host
	}
	resp, err := p.smokeClient(r.Host).Do(req)
	if err != nil {
		return 0, "", brief(err, timeout)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

func (p *Prober) smokeClient(serverName string) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			// #nosec G402 -- loopback check of our own nginx; the
			// certificate names the public host, not 127.0.0.1.
			TLSClientConfig: &tls.Config{ServerName: serverName, InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
