package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// Webhook limits. A delivery is hashed while it is read and only its
// first webhookPrefix bytes are kept (for the push's ref), so memory does
// not grow with the body, before or after authentication.
const (
	// DefaultWebhookMaxBody is the largest body accepted (413 above): a
	// push's payload is a few kilobytes to a few megabytes; GitHub's cap
	// is 25 MB, and a push too large for this is caught by the next poll.
	DefaultWebhookMaxBody = 5 << 20
	// DefaultWebhookConcurrency is how many deliveries are read at once;
	// more get 503 at once (GitHub redelivers, the poll catches up).
	DefaultWebhookConcurrency = 4
	// webhookPrefix is how much of a body is kept to read the push's ref.
	webhookPrefix = 64 << 10
)

// WebhookConfig enables POST /hooks/github.
type WebhookConfig struct {
	// Secret is the webhook's HMAC key; empty disables the endpoint.
	Secret []byte
	// Branch is the deployed branch: a push to another branch is ignored.
	Branch string
	// MaxBody is the largest body accepted; 0 means DefaultWebhookMaxBody.
	MaxBody int64
	// Concurrency is how many deliveries are handled at once; 0 means
	// DefaultWebhookConcurrency.
	Concurrency int
}

// Handler serves /healthz, /readyz, /status, /metrics and, with a secret,
// POST /hooks/github.
func (a *Agent) Handler(wh WebhookConfig) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s := a.Status()
		if !s.Ready {
			http.Error(w, "not ready: "+s.LastError, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.Status())
	})
	mux.Handle("GET /metrics", a.cfg.Metrics.Registry)
	if len(wh.Secret) > 0 {
		mux.Handle("POST /hooks/github", a.webhook(wh))
	}
	return mux
}

// webhook verifies X-Hub-Signature-256 and triggers a fetch. A missing or
// bad signature gets 401 and triggers nothing.
func (a *Agent) webhook(wh WebhookConfig) http.HandlerFunc {
	count := a.cfg.Metrics.WebhookRequests
	if wh.MaxBody <= 0 {
		wh.MaxBody = DefaultWebhookMaxBody
	}
	if wh.Concurrency <= 0 {
		wh.Concurrency = DefaultWebhookConcurrency
	}
	slots := make(chan struct{}, wh.Concurrency)
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			count.WithLabelValues("busy").Inc()
			w.Header().Set("Connection", "close")
			http.Error(w, "busy: too many webhook deliveries at once", http.StatusServiceUnavailable)
			return
		}
		sig := r.Header.Get("X-Hub-Signature-256")
		if _, err := parseSignature(sig); err != nil {
			// Refused before a byte of the body is read.
			count.WithLabelValues("unauthorized").Inc()
			a.log.Warn("webhook refused", zap.String("remote", r.RemoteAddr), zap.Error(err))
			w.Header().Set("Connection", "close")
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if r.ContentLength > wh.MaxBody {
			count.WithLabelValues("bad_request").Inc()
			w.Header().Set("Connection", "close")
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		mac := hmac.New(sha256.New, wh.Secret)
		prefix := &prefixWriter{max: webhookPrefix}
		_, err := io.Copy(io.MultiWriter(mac, prefix), http.MaxBytesReader(w, r.Body, wh.MaxBody))
		if err != nil {
			count.WithLabelValues("bad_request").Inc()
			status := http.StatusBadRequest
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "read body: "+err.Error(), status)
			return
		}
		body := prefix.b
		if err := checkMAC(mac.Sum(nil), sig); err != nil {
			count.WithLabelValues("unauthorized").Inc()
			a.log.Warn("webhook refused", zap.String("remote", r.RemoteAddr), zap.Error(err))
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		event := r.Header.Get("X-GitHub-Event")
		if event == "ping" {
			count.WithLabelValues("ignored").Inc()
			io.WriteString(w, "pong\n")
			return
		}
		if event == "push" && wh.Branch != "" {
			var p struct {
				Ref string `json:"ref"`
			}
			if json.Unmarshal(body, &p) == nil && p.Ref != "" && p.Ref != "refs/heads/"+wh.Branch {
				count.WithLabelValues("ignored").Inc()
				io.WriteString(w, "ignored: push to "+p.Ref+"\n")
				return
			}
		}
		count.WithLabelValues("accepted").Inc()
		a.log.Info("webhook: fetching now", zap.String("event", event), zap.String("delivery", r.Header.Get("X-GitHub-Delivery")))
		a.Trigger(TriggerWebhook)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "fetching\n")
	}
}

// prefixWriter keeps the first max bytes written to it and drops the rest.
type prefixWriter struct {
	b   []byte
	max int
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if room := p.max - len(p.b); room > 0 {
		p.b = append(p.b, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// verifySignature checks a GitHub "sha256=<hex>" HMAC of body.
func verifySignature(secret, body []byte, header string) error {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return checkMAC(mac.Sum(nil), header)
}

// parseSignature reads the "sha256=<hex>" header.
func parseSignature(header string) ([]byte, error) {
	if header == "" {
		return nil, errors.New("missing X-Hub-Signature-256")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return nil, errors.New("X-Hub-Signature-256: want sha256=<hex>")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return nil, errors.New("X-Hub-Signature-256: want 64 hex digits")
	}
	return got, nil
}

// checkMAC compares sum, the body's HMAC, with the header's.
func checkMAC(sum []byte, header string) error {
	got, err := parseSignature(header)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, sum) {
		return errors.New("X-Hub-Signature-256 does not match the body")
	}
	return nil
}
