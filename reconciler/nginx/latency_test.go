package nginx

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResponseTimes: the p95 (nearest rank) of $request_time over the
// lines of a window, both colors, skipping lines of the older four-field
// format, torn lines and lines outside the window.
func TestResponseTimes(t *testing.T) {
	t.Parallel()
	base := time.Unix(1_800_000_000, 0)
	msec := func(d time.Duration) string { return fmt.Sprintf("%.3f", float64(base.Add(d).UnixMilli())/1000) }
	var b strings.Builder
	fmt.Fprintf(&b, "%s blue 200 -\n", msec(time.Second))             // old format: no request_time
	fmt.Fprintf(&b, "%s blue 200 9.999 200\n", msec(-time.Second))    // before the window
	fmt.Fprintf(&b, "%s green 200 8.888 200\n", msec(20*time.Second)) // after it
	for i := 1; i <= 100; i++ {
		color := []string{"blue", "green"}[i%2]
		fmt.Fprintf(&b, "%s %s 200 %.3f 502, 200\n", msec(time.Duration(i)*100*time.Millisecond), color, float64(i)/1000)
	}
	b.WriteString(msec(5*time.Second) + " green 20") // torn last line
	path := filepath.Join(t.TempDir(), "site.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := ResponseTimes(path, base, base.Add(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if l.Requests != 100 || l.P95 != 95*time.Millisecond {
		t.Fatalf("latency %+v, want 100 requests, p95 95ms", l)
	}
	if l, err := ResponseTimes(path, base.Add(time.Hour), base.Add(2*time.Hour)); err != nil || l != (Latency{}) {
		t.Fatalf("empty window: %+v, %v", l, err)
	}
	if l, err := ResponseTimes(filepath.Join(t.TempDir(), "none.log"), base, base.Add(time.Hour)); err != nil || l != (Latency{}) {
		t.Fatalf("missing log: %+v, %v", l, err)
	}
}
