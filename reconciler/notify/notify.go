// Package notify delivers deploy events to HTTP receivers (JSON or Slack
// incoming webhooks) and, through a Mailer (Amazon SES), to email
// recipients. Delivery is asynchronous, retried with a timeout, and never
// fails a deploy: a receiver that is down is logged and counted.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

// Delivery settings.
const (
	attempts       = 3
	attemptTimeout = 5 * time.Second
	backoff        = 500 * time.Millisecond
)

// Mailer sends a plain-text email (awscloud.Mailer) and returns its message
// id. Its errors never quote the body.
type Mailer interface {
	SendEmail(ctx context.Context, from string, to []string, subject, body string) (string, error)
}

// Notifier sends events to the receivers of an env file.
type Notifier struct {
	targets []state.Notify
	mailer  Mailer
	client  *http.Client
	log     *zap.Logger
	wg      sync.WaitGroup
	failed  atomic.Int64
	sent    atomic.Int64
}

var _ reconciler.Notifier = (*Notifier)(nil)

// New returns a Notifier for targets (URLs resolved). A nil log discards.
func New(targets []state.Notify, log *zap.Logger) *Notifier {
	if log == nil {
		log = zap.NewNop()
	}
	return &Notifier{targets: targets, log: log, client: &http.Client{Timeout: attemptTimeout}}
}

// WithMailer sets what sends the email of format email receivers and
// returns n. Without one, their notifications fail (logged and counted).
func (n *Notifier) WithMailer(m Mailer) *Notifier {
	n.mailer = m
	return n
}

// Notify starts delivering e to every receiver that listens to it and
// returns at once; Close waits for the deliveries.
func (n *Notifier) Notify(ctx context.Context, e reconciler.Event) {
	for _, t := range n.targets {
		if len(t.Events) > 0 && !slices.Contains(t.Events, e.Name) {
			continue
		}
		if t.Format == "email" {
			n.email(ctx, t, e)
			continue
		}
		body, err := payload(t.Format, e)
		if err != nil {
			n.log.Warn("notification not sent", zap.String("event", string(e.Name)), zap.Error(err))
			n.failed.Add(1)
			continue
		}
		n.wg.Add(1)
		go func(t state.Notify) {
			defer n.wg.Done()
			n.deliver(ctx, e.Name, redact(t.URL), func(ctx context.Context) error { return n.post(ctx, t.URL, body) })
		}(t)
	}
}

// email starts sending e to the recipients of t through the mailer.
func (n *Notifier) email(ctx context.Context, t state.Notify, e reconciler.Event) {
	to := fmt.Sprintf("email to %d recipient(s)", len(t.To))
	if n.mailer == nil {
		n.log.Warn("notification not sent: no email sender (Amazon SES) is configured", zap.String("event", string(e.Name)), zap.String("to", to))
		n.failed.Add(1)
		return
	}
	subject, body := emailMessage(e)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.deliver(ctx, e.Name, to, func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
			defer cancel()
			_, err := n.mailer.SendEmail(ctx, t.From, t.To, subject, body)
			return err
		})
	}()
}

// Close waits up to timeout for deliveries in flight.
func (n *Notifier) Close(timeout time.Duration) {
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		n.log.Warn("notifications still in flight at exit", zap.Duration("waited", timeout))
	}
}

// Failed is the number of notifications that could not be delivered.
func (n *Notifier) Failed() int64 { return n.failed.Load() }

// Sent is the number of notifications delivered.
func (n *Notifier) Sent() int64 { return n.sent.Load() }

// deliver runs send up to attempts times; to names the receiver in logs
// without its credentials.
func (n *Notifier) deliver(ctx context.Context, event state.EventName, to string, send func(context.Context) error) {
	host := to
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				i = attempts
				continue
			case <-time.After(backoff << (i - 1)):
			}
		}
		if last = send(ctx); last == nil {
			n.sent.Add(1)
			n.log.Debug("notification sent", zap.String("event", string(event)), zap.String("to", host))
			return
		}
	}
	n.failed.Add(1)
	n.log.Warn("notification failed; the deploy goes on", zap.String("event", string(event)), zap.String("to", host), zap.Int("attempts", attempts), zap.String("error", last.Error()))
}

func (n *Notifier) post(ctx context.Context, u string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return errors.New("bad receiver URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reconciler")
	resp, err := n.client.Do(req)
	if err != nil {
		// The error text quotes the URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s", strings.ReplaceAll(ue.Err.Error(), u, redact(u)))
		}
		return errors.New("request failed")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// redact keeps the scheme and host of a receiver URL: paths and queries of
// webhook URLs are credentials.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "(receiver)"
	}
	return p.Scheme + "://" + p.Host + "/…"
}

// slackIcons are the emoji a Slack message starts with, one for each of
// state.Events.
var slackIcons = map[state.EventName]string{
	state.EventDeployStarted:         ":rocket:",
	state.EventDeploySucceeded:       ":white_check_mark:",
	state.EventDeployFailed:          ":x:",
	state.EventDeployRolledBack:      ":rewind:",
	state.EventDriftRepaired:         ":wrench:",
	state.EventMigrationFailed:       ":x:",
	state.EventContainerCrashLooping: ":rotating_light:",
	state.EventSiteUnhealthy:         ":no_entry:",
	state.EventDeployRefused:         ":lock:",
}

func payload(format string, e reconciler.Event) ([]byte, error) {
	if format != "slack" {
		return json.Marshal(e)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s *%s* %s at `%.12s`", slackIcons[e.Name], e.Name, e.Env, e.Commit)
	if e.Author != "" {
		fmt.Fprintf(&b, " by %s", e.Author)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	for _, s := range e.Services {
		fmt.Fprintf(&b, "\n• %s: %s → %s", s.Name, orNone(s.OldImage), orNone(s.NewImage))
	}
	if e.Duration > 0 {
		fmt.Fprintf(&b, "\n(%.1fs)", e.Duration)
	}
	if e.StreamsCut > 0 {
		fmt.Fprintf(&b, "\n%d stream(s) cut at the drain deadline", e.StreamsCut)
	}
	if e.Error != "" {
		fmt.Fprintf(&b, "\n```%s```", e.Error)
	}
	return json.Marshal(map[string]string{"text": b.String()})
}

// emailMessage is the subject and plain-text body of e's email.
func emailMessage(e reconciler.Event) (subject, body string) {
	subject = fmt.Sprintf("[reconciler] %s: %s at %.12s", e.Env, e.Name, e.Commit)
	var b strings.Builder
	fmt.Fprintf(&b, "%s in %s at commit %s\n", e.Name, e.Env, e.Commit)
	if e.Author != "" {
		fmt.Fprintf(&b, "Author: %s\n", e.Author)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, "Commit message: %s\n", e.Message)
	}
	if len(e.Services) > 0 {
		b.WriteString("\nServices:\n")
		for _, s := range e.Services {
			fmt.Fprintf(&b, "  %s: %s -> %s\n", s.Name, orNone(s.OldImage), orNone(s.NewImage))
		}
	}
	if e.Duration > 0 {
		fmt.Fprintf(&b, "\nDuration: %.1fs\n", e.Duration)
	}
	if e.StreamsCut > 0 {
		fmt.Fprintf(&b, "Streams cut at the drain deadline: %d\n", e.StreamsCut)
	}
	if e.Error != "" {
		fmt.Fprintf(&b, "\nError:\n%s\n", e.Error)
	}
	b.WriteString("\nSent by reconciler. `reconciler history --env " + e.Env + "` lists every deploy attempt.\n")
	return subject, b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
