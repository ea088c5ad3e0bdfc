package nginx

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestLastRequest: the last request nginx sent to a port is found among
// direct answers and retries, older lines without ua= are skipped, and a
// port that is a prefix of another does not match it.
func TestLastRequest(t *testing.T) {
	log := []byte(`1700000000.100 blue 200 0.001 200 ut=0.001
1700000001.250 green 200 0.001 200 s=1 ua=127.0.0.1:21001 ut=0.001
1700000002.500 green 200 0.002 404, 200 s=1 ua=127.0.0.1:21002, 127.0.0.1:21001 ut=0.001, 0.001
1700000003.000 green 200 0.001 200 s=0 ua=127.0.0.1:21002 ut=0.001
1700000004.000 green 200 0.001 200 s=0 ua=127.0.0.1:210010 ut=0.001
1700000005.000 green 502 0.001 - s=0 ua=- ut=-
`)
	cases := []struct {
		port int
		want time.Time
	}{
		{21001, time.UnixMilli(1700000002500)},
		{21002, time.UnixMilli(1700000003000)},
		{210010, time.UnixMilli(1700000004000)},
		{21003, time.Time{}},
	}
	for _, c := range cases {
		if got := lastRequest(log, c.port); !got.Equal(c.want) {
			t.Errorf("port %d: last request %v, want %v", c.port, got, c.want)
		}
	}
	// ua= ends at the next field with a name: ut='s values are no ports.
	if got := lastRequest([]byte("1700000006.000 green 200 0.001 200 s=0 ua=- ut=127.0.0.1:21001\n"), 21001); !got.IsZero() {
		t.Errorf("a ut= value was read as a port: %v", got)
	}
}

// TestLastRequestFile: the first read (negative offset) starts at the
// log's tail, on a line boundary; later reads go on from the returned
// offset, see only complete lines, and start over after a rotation.
func TestLastRequestFile(t *testing.T) {
	e := New("true", "true", zap.NewNop())
	path := filepath.Join(t.TempDir(), "site.log")
	ctx := context.Background()
	last, off, err := e.LastRequest(ctx, path, -1, 21001)
	if err != nil || !last.IsZero() || off != 0 {
		t.Fatalf("missing log: %v %d %v, want no request at offset 0", last, off, err)
	}
	line := "1700000001.000 blue 200 0.001 200 s=1 ua=127.0.0.1:21001 ut=0.001\n"
	if err := os.WriteFile(path, []byte(line+"1700000002.000 blue 200 0.001 200 s=1 ua=127.0.0.1:21001 ut=0.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	last, off, err = e.LastRequest(ctx, path, off, 21001)
	if err != nil || !last.Equal(time.UnixMilli(1700000001000)) || off != int64(len(line)) {
		t.Fatalf("got %v at %d (%v), want the complete line only", last, off, err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("01\n")
	f.Close()
	last, off2, err := e.LastRequest(ctx, path, off, 21001)
	if err != nil || !last.Equal(time.UnixMilli(1700000002000)) || off2 <= off {
		t.Fatalf("got %v at %d (%v), want the completed line", last, off2, err)
	}
	// A tail read that begins inside a line skips it.
	big := make([]byte, 0, logTail+200)
	for len(big) < logTail+100 {
		big = append(big, "1700000000.000 blue 200 0.001 200 s=0 ua=127.0.0.1:21009 ut=0.001\n"...)
	}
	big = append(big, line...)
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	last, off, err = e.LastRequest(ctx, path, -1, 21001)
	if err != nil || !last.Equal(time.UnixMilli(1700000001000)) || off != int64(len(big)) {
		t.Fatalf("tail read: %v at %d (%v), want the last line at %d", last, off, err, len(big))
	}
	// Rotated: the log is shorter than the offset and is read from 0.
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	last, off, err = e.LastRequest(ctx, path, off, 21001)
	if err != nil || !last.Equal(time.UnixMilli(1700000001000)) || off != int64(len(line)) {
		t.Fatalf("after rotation: %v at %d (%v)", last, off, err)
	}
}
