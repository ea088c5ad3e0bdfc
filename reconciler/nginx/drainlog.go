package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
)

var _ reconciler.DrainLog = (*Edge)(nil)

// logTail is how much of the end of an access log a drain's first read
// covers: the requests of the last seconds, on a busy site too.
const logTail = 8 << 20

// LastRequest implements reconciler.DrainLog on a site's access log
// (templates: "$msec $color $status ... ua=$upstream_addr ut=..."). A
// negative from reads the log's last logTail bytes, from the first line
// that starts in them; a log that shrank (rotated) is read from its start.
func (e *Edge) LastRequest(ctx context.Context, path string, from int64, port int) (time.Time, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, max(from, 0), nil
	}
	if err != nil {
		return time.Time{}, from, fmt.Errorf("access log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return time.Time{}, from, fmt.Errorf("access log: %w", err)
	}
	tail := from < 0
	switch {
	case tail:
		from = max(fi.Size()-logTail, 0)
		tail = from > 0
	case fi.Size() < from:
		from = 0
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return time.Time{}, from, fmt.Errorf("access log: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return time.Time{}, from, fmt.Errorf("access log: %w", err)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	start := 0
	if tail {
		// The read began inside a line: skip to the next one.
		start = min(bytes.IndexByte(data, '\n')+1, end)
	}
	return lastRequest(data[start:end], port), from + int64(end), nil
}

// lastRequest is the end time ($msec) of the last line of log whose ua=
// field lists 127.0.0.1:port among the upstreams nginx tried; the zero
// time for none. Lines without a ua= field (written before it was added)
// are skipped.
func lastRequest(log []byte, port int) time.Time {
	want := "127.0.0.1:" + strconv.Itoa(port)
	var last float64
	for _, line := range strings.Split(string(log), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !triedPort(fields, want) {
			continue
		}
		if msec, err := strconv.ParseFloat(fields[0], 64); err == nil && msec > last {
			last = msec
		}
	}
	if last == 0 {
		return time.Time{}
	}
	sec, frac := math.Modf(last)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond))
}

// triedPort reports whether the ua= field of a log line's fields, up to
// the next name= field, names addr: "ua=127.0.0.1:8080", or one of
// "ua=127.0.0.1:8081, 127.0.0.1:8080" after a retry (", " between tries,
// " : " after an internal redirect).
func triedPort(fields []string, addr string) bool {
	in := false
	for _, f := range fields {
		switch {
		case strings.HasPrefix(f, "ua="):
			in, f = true, strings.TrimPrefix(f, "ua=")
		case in && strings.Contains(f, "="):
			return false
		case !in:
			continue
		}
		if strings.TrimRight(f, ",") == addr {
			return true
		}
	}
	return false
}
