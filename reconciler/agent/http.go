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

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// maxWebhookBody is GitHub's largest webhook payload.
const maxWebhookBody = 25 << 20

// WebhookConfig enables POST /hooks/github.
type WebhookConfig struct {
	// Secret is the webhook's HMAC key; empty disables the endpoint.
	Secret []byte
	// Branch is the deployed branch: a push to another branch is ignored.
	Branch string
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.cfg.Metrics.Registry, promhttp.HandlerOpts{}))
	if len(wh.Secret) > 0 {
		mux.Handle("POST /hooks/github", a.webhook(wh))
	}
	return mux
}

// webhook verifies X-Hub-Signature-256 and triggers a fetch. A missing or
// bad signature gets 401 and triggers nothing.
func (a *Agent) webhook(wh WebhookConfig) http.HandlerFunc {
	count := a.cfg.Metrics.WebhookRequests
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
		if err != nil {
			count.WithLabelValues("bad_request").Inc()
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := verifySignature(wh.Secret, body, r.Header.Get("X-Hub-Signature-256")); err != nil {
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

// verifySignature checks a GitHub "sha256=<hex>" HMAC of body.
func verifySignature(secret, body []byte, header string) error {
	if header == "" {
		return errors.New("missing X-Hub-Signature-256")
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return errors.New("X-Hub-Signature-256: want sha256=<hex>")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errors.New("X-Hub-Signature-256: not hex")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("X-Hub-Signature-256 does not match the body")
	}
	return nil
}
