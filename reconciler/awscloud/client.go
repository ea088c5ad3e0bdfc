package awscloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// HelperName is the helper's executable, installed beside reconciler.
const HelperName = "reconciler-aws"

// stderrLimit bounds the helper's stderr kept for an error.
const stderrLimit = 4 << 10

// Loader runs the helper for the environment's settings. It remembers,
// for the settings of Use, that the configuration loaded and credentials
// could be had (Check): a deploy checks once before it changes anything.
// A failure is not remembered. The zero Loader is ready; it is safe for
// concurrent use.
type Loader struct {
	// Helper is the helper's path; "" looks for HelperName beside the
	// running executable, then in $PATH (tests point it at a fresh build).
	Helper string
	// Release is the running reconciler's release, sent with each
	// request: a helper of another release refuses it. "" is not checked.
	Release string

	mu      sync.Mutex
	set     Settings
	checked bool
}

// Use sets the environment's settings for the next calls; a change drops
// what Check remembered for the previous ones.
func (l *Loader) Use(s Settings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s != l.set {
		l.set, l.checked = s, false
	}
}

// Check makes sure, once for the settings of Use, that the configuration
// loads and credentials can be had: it fails with ErrNoRegion or
// ErrNoCredentials, one line of guidance, when not.
func (l *Loader) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checked {
		return nil
	}
	var res LoadResult
	if err := l.callWith(ctx, l.set, OpLoad, nil, &res); err != nil {
		return err
	}
	l.checked = true
	return nil
}

// settings are the settings of Use.
func (l *Loader) settings() Settings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.set
}

// call runs one request of op with args, under the settings of Use, and
// decodes the result into result (nil: none expected).
func (l *Loader) call(ctx context.Context, op string, args, result any) error {
	return l.callWith(ctx, l.settings(), op, args, result)
}

// callWith runs the helper once: the request on its stdin, the response
// from its stdout. Values (secrets) travel only in that response; the
// helper's stderr, bounded, goes into the error when it fails. When ctx
// ends the helper is killed and ctx's error returned.
func (l *Loader) callWith(ctx context.Context, s Settings, op string, args, result any) error {
	helper, err := l.helper()
	if err != nil {
		return err
	}
	req := Request{Version: ProtocolVersion, Release: l.Release, Op: op, Settings: s}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return fmt.Errorf("%s %s: encode request: %w", HelperName, op, err)
		}
	}
	in, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s %s: encode request: %w", HelperName, op, err)
	}
	var stdout bytes.Buffer
	stderr := &boundedBuffer{limit: stderrLimit}
	cmd := exec.CommandContext(ctx, helper)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, stderr
	cmd.WaitDelay = 5 * time.Second // a killed helper's pipes, should anything hold them
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", HelperName, op, ctx.Err())
	}
	var resp Response
	if runErr != nil {
		return fmt.Errorf("%s %s (%s): %w%s", HelperName, op, helper, runErr, stderr.suffix())
	}
	// stdout may hold values: an error tells its size, never its text.
	size := stdout.Len()
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&resp); err != nil || dec.More() || resp.Error == nil && resp.Result == nil && result != nil {
		return fmt.Errorf("%s %s (%s): not a response on stdout (%d bytes)%s", HelperName, op, helper, size, stderr.suffix())
	}
	if resp.Error != nil {
		return wireError(resp.Error)
	}
	if result != nil {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("%s %s (%s): decode result: %w", HelperName, op, helper, err)
		}
	}
	return nil
}

// wireError is the error of a response, matching (errors.Is) the sentinel
// of its kind, with the helper's message.
func wireError(w *WireError) error {
	var sentinel error
	switch w.Kind {
	case KindNoRegion:
		sentinel = ErrNoRegion
	case KindNoCredentials:
		sentinel = ErrNoCredentials
	case KindProtocol:
		sentinel = ErrProtocol
	case KindTimeout:
		sentinel = context.DeadlineExceeded
	}
	return &helperError{msg: w.Message, sentinel: sentinel}
}

// helperError is an error the helper reported: its message as the SDK
// side wrote it, and the sentinel of its kind for errors.Is.
type helperError struct {
	msg      string
	sentinel error
}

func (e *helperError) Error() string { return e.msg }

func (e *helperError) Unwrap() error { return e.sentinel }

// KindOf is the kind (KindNoRegion, ...) under which err crosses the pipe.
func KindOf(err error) string {
	switch {
	case errors.Is(err, ErrNoRegion):
		return KindNoRegion
	case errors.Is(err, ErrNoCredentials):
		return KindNoCredentials
	case errors.Is(err, ErrProtocol):
		return KindProtocol
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	return KindAWS
}

// helper is the path of the helper binary: Helper, else HelperName
// beside the running executable (symlinks resolved), else in $PATH.
func (l *Loader) helper() (string, error) {
	if l.Helper != "" {
		return l.Helper, nil
	}
	exe, err := os.Executable()
	if err != nil {
		exe = ""
	}
	return findHelper(exe)
}

// findHelper is HelperName in the directory of exe, symlinks resolved
// ("" skips it), else in $PATH.
func findHelper(exe string) (string, error) {
	var looked []string
	if exe != "" {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), HelperName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s: %w", ErrNoHelper, p, err)
		}
		looked = append(looked, filepath.Dir(exe))
	}
	if p, err := exec.LookPath(HelperName); err == nil {
		return p, nil
	}
	looked = append(looked, "$PATH ("+os.Getenv("PATH")+")")
	return "", fmt.Errorf("%w: looked in %s; the AWS calls (ssm: and secretsmanager: secrets, backup.s3, snapshots, Route 53, email) need it: install %s beside reconciler (`make build` builds it into bin/)",
		ErrNoHelper, strings.Join(looked, " and "), HelperName)
}

// boundedBuffer keeps the first limit bytes written to it and counts the
// rest.
type boundedBuffer struct {
	limit   int
	buf     bytes.Buffer
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	n := len(p) // all of p is taken: a short write would fail the copy
	room := b.limit - b.buf.Len()
	if room < len(p) {
		b.dropped += len(p) - max(room, 0)
		p = p[:max(room, 0)]
	}
	b.buf.Write(p)
	return n, nil
}

// suffix is the kept stderr as the end of an error: "; stderr: ...".
func (b *boundedBuffer) suffix() string {
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return ""
	}
	if b.dropped > 0 {
		s += fmt.Sprintf(" ... (%d more bytes)", b.dropped)
	}
	return "; stderr: " + s
}
