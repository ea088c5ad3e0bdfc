package metrics

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

func text(r *Registry) string { return string(r.AppendText(nil)) }

// TestWriteText: families sorted by name, labels by name, series by label
// values; HELP and label values escaped; empty vectors left out.
func TestWriteText(t *testing.T) {
	r := NewRegistry()
	z := NewGaugeVec("z_last", "Sorted last.", "b", "a")
	c := NewCounterVec("a_total", "Back\\slash and\nnewline \"quoted\".", "path")
	empty := NewCounterVec("m_empty", "No series.", "x")
	r.MustRegister(z, c, empty)
	z.WithLabelValues("2", "y").Set(1)
	z.WithLabelValues("1", "y").Set(2)
	z.WithLabelValues("9", "x").Set(-1)
	c.WithLabelValues(`C:\dir "q"` + "\nline").Add(2.5)
	c.WithLabelValues("").Inc()
	want := `# HELP a_total Back\\slash and\nnewline "quoted".
# TYPE a_total counter
a_total{path=""} 1
a_total{path="C:\\dir \"q\"\nline"} 2.5
# HELP z_last Sorted last.
# TYPE z_last gauge
z_last{a="x",b="9"} -1
z_last{a="y",b="1"} 2
z_last{a="y",b="2"} 1
`
	if got := text(r); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	checkParses(t, text(r))
}

// TestFloats: values are written as client_golang writes them.
func TestFloats(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {3, "3"}, {0.25, "0.25"},
		{10 << 20, "1.048576e+07"}, {123456, "123456"}, {1795953690.5, "1.7959536905e+09"},
		{1e-7, "1e-07"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"},
		{float64(^uint64(0)), "1.8446744073709552e+19"},
	} {
		if got := formatFloat(tc.v); got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestHistogram: cumulative buckets with le after the other labels, a
// value on a bound counts in that bucket, +Inf holds the count; then _sum
// and _count.
func TestHistogram(t *testing.T) {
	r := NewRegistry()
	h := NewHistogramVec("d_seconds", "Durations.", []float64{0.5, 1, 2.5, math.Inf(1)}, "env")
	r.MustRegister(h)
	for _, v := range []float64{0.1, 0.5, 2, 7} {
		h.WithLabelValues("p").Observe(v)
	}
	want := `# HELP d_seconds Durations.
# TYPE d_seconds histogram
d_seconds_bucket{env="p",le="0.5"} 2
d_seconds_bucket{env="p",le="1"} 2
d_seconds_bucket{env="p",le="2.5"} 3
d_seconds_bucket{env="p",le="+Inf"} 4
d_seconds_sum{env="p"} 9.6
d_seconds_count{env="p"} 4
`
	got := text(r)
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	checkParses(t, got)

	r2 := NewRegistry()
	nl := NewHistogramVec("no_labels", "x", []float64{1})
	r2.MustRegister(nl)
	nl.WithLabelValues().Observe(2)
	want = "# HELP no_labels x\n# TYPE no_labels histogram\nno_labels_bucket{le=\"1\"} 0\nno_labels_bucket{le=\"+Inf\"} 1\nno_labels_sum 2\nno_labels_count 1\n"
	if got := text(r2); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestVecOps: Delete, Reset, Len and the values of counters and gauges.
func TestVecOps(t *testing.T) {
	g := NewGaugeVec("g", "g", "env", "commit")
	g.WithLabelValues("p", "a").Set(1)
	g.WithLabelValues("p", "b").Inc()
	g.WithLabelValues("p", "b").Add(2)
	g.WithLabelValues("p", "b").Dec()
	if v := g.WithLabelValues("p", "b").Value(); v != 2 {
		t.Errorf("gauge = %v, want 2", v)
	}
	if !g.DeleteLabelValues("p", "a") || g.DeleteLabelValues("p", "a") || g.DeleteLabelValues("p") {
		t.Errorf("DeleteLabelValues: want true once, then false")
	}
	if n := g.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	g.Reset()
	if n := g.Len(); n != 0 {
		t.Errorf("Len after Reset = %d", n)
	}
	g.WithLabelValues("p", "c").SetToCurrentTime()
	if v := g.WithLabelValues("p", "c").Value(); v < 1.7e9 {
		t.Errorf("SetToCurrentTime = %v", v)
	}
	// Label values that a separator would join the same way stay apart.
	g.WithLabelValues("a\xffb", "c").Set(1)
	g.WithLabelValues("a", "b\xffc").Set(2)
	if n := g.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	mustPanic(t, "wrong number of values", func() { g.WithLabelValues("p") })
	mustPanic(t, "counter decrease", func() { NewCounterVec("c", "c").WithLabelValues().Add(-1) })
	mustPanic(t, "bad name", func() { NewCounterVec("a-b", "c") })
	mustPanic(t, "le label on a histogram", func() { NewHistogramVec("h", "h", nil, "le") })
	mustPanic(t, "buckets not increasing", func() { NewHistogramVec("h", "h", []float64{1, 1}) })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", what)
		}
	}()
	f()
}

// TestRegisterDuplicate: a family name is registered once, across
// collectors and within one; a refused collector adds nothing.
func TestRegisterDuplicate(t *testing.T) {
	r := NewRegistry()
	if err := r.Register(NewCounterVec("x_total", "x")); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(NewGaugeVec("x_total", "other")); !errors.Is(err, ErrDuplicate) {
		t.Errorf("second x_total: %v, want ErrDuplicate", err)
	}
	d := NewDesc("y", "y", GaugeType)
	if err := r.Register(constCollector{d, d}); !errors.Is(err, ErrDuplicate) {
		t.Errorf("collector describing y twice: %v, want ErrDuplicate", err)
	}
	if got := r.Names(); len(got) != 1 || got[0] != "x_total" {
		t.Errorf("Names = %q", got)
	}
	mustPanic(t, "MustRegister of a duplicate", func() { r.MustRegister(NewCounterVec("x_total", "x")) })
}

// constCollector writes 1 for each of its descs (no labels).
type constCollector []*Desc

func (c constCollector) Describe() []*Desc { return c }
func (c constCollector) Collect(s *Sink) {
	for _, d := range c {
		s.Add(d, 1)
	}
}

// TestCollectorAtScrape: a collector's series are computed at each scrape;
// an unregistered desc panics; a repeated series is written once.
func TestCollectorAtScrape(t *testing.T) {
	r := NewRegistry()
	d := NewDesc("host_up", "Up.", GaugeType, "host")
	n := 0
	r.MustRegister(funcCollector{[]*Desc{d}, func(s *Sink) {
		n++
		s.Add(d, float64(n), "b")
		s.Add(d, 0, "a")
		s.Add(d, 7, "a") // repeated: the first is kept
	}})
	text(r)
	want := "# HELP host_up Up.\n# TYPE host_up gauge\nhost_up{host=\"a\"} 0\nhost_up{host=\"b\"} 2\n"
	if got := text(r); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	other := NewDesc("other", "o", GaugeType)
	r2 := NewRegistry()
	r2.MustRegister(funcCollector{nil, func(s *Sink) { s.Add(other, 1) }})
	mustPanic(t, "unregistered desc", func() { text(r2) })
	hd := NewDesc("h", "h", HistogramType)
	r3 := NewRegistry()
	r3.MustRegister(funcCollector{[]*Desc{hd}, func(s *Sink) { s.Add(hd, 1) }})
	mustPanic(t, "a histogram through Add", func() { text(r3) })
}

type funcCollector struct {
	descs []*Desc
	f     func(*Sink)
}

func (c funcCollector) Describe() []*Desc { return c.descs }
func (c funcCollector) Collect(s *Sink)   { c.f(s) }

// TestServeHTTP: the content type of the text format 0.0.4, gzip when
// asked for, and the same body either way.
func TestServeHTTP(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("req_total", "Requests.", "code")
	r.MustRegister(c, NewProcessCollector(), NewGoCollector())
	c.WithLabelValues("200").Add(3)
	srv := httptest.NewServer(r)
	defer srv.Close()
	get := func(enc string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Accept-Encoding", enc)
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rd io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			rd = zr
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	plain, body := get("")
	if ct := plain.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if plain.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzipped without Accept-Encoding")
	}
	zipped, zbody := get("br;q=1.0, gzip;q=0.8")
	if zipped.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("not gzipped for Accept-Encoding: gzip")
	}
	if noz, _ := get("gzip;q=0"); noz.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzipped for gzip;q=0")
	}
	if !strings.Contains(body, "req_total{code=\"200\"} 3\n") || !strings.Contains(zbody, "req_total{code=\"200\"} 3\n") {
		t.Errorf("bodies lack the counter:\n%s\n%s", body, zbody)
	}
	checkParses(t, body)
	testenv.PromtoolCheckMetrics(t, body)
}

// TestRuntimeCollectors: the process and Go families this package keeps
// are all written, with plausible values.
func TestRuntimeCollectors(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(NewProcessCollector(), NewGoCollector())
	fams := checkParses(t, text(r))
	for _, name := range r.Names() {
		if fams[name] == nil {
			t.Errorf("%s registered but not written", name)
		}
	}
	val := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.Metric) == 0 {
			return math.NaN()
		}
		m := f.Metric[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	for name, ok := range map[string]func(float64) bool{
		"process_resident_memory_bytes": func(v float64) bool { return v > 1<<20 },
		"process_open_fds":              func(v float64) bool { return v >= 3 },
		"process_max_fds":               func(v float64) bool { return v >= 3 },
		"process_start_time_seconds":    func(v float64) bool { return v > 1.7e9 },
		"go_goroutines":                 func(v float64) bool { return v >= 1 },
		"go_threads":                    func(v float64) bool { return v >= 1 },
		"go_memstats_sys_bytes":         func(v float64) bool { return v > 1<<20 },
		"go_sched_gomaxprocs_threads":   func(v float64) bool { return v >= 1 },
	} {
		if v := val(name); !ok(v) {
			t.Errorf("%s = %v", name, v)
		}
	}
}

// TestConcurrent: updates from goroutines while scraping (run with -race)
// lose nothing.
func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := NewCounterVec("c_total", "c", "w")
	g := NewGaugeVec("g", "g", "w")
	h := NewHistogramVec("h", "h", []float64{1, 10}, "w")
	r.MustRegister(c, g, h, NewGoCollector(), NewProcessCollector())
	const workers, n = 4, 500
	var wg sync.WaitGroup
	stop := make(chan struct{})
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		for {
			select {
			case <-stop:
				return
			default:
				r.AppendText(nil)
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lv := string(rune('a' + w))
			for i := range n {
				c.WithLabelValues(lv).Inc()
				c.WithLabelValues("shared").Add(1)
				g.WithLabelValues("shared").Add(1)
				h.WithLabelValues("shared").Observe(float64(i % 20))
				if i%50 == 0 {
					g.DeleteLabelValues(lv)
					g.WithLabelValues(lv).Set(float64(i))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-scraped
	if v := c.WithLabelValues("shared").Value(); v != workers*n {
		t.Errorf("shared counter = %v, want %d", v, workers*n)
	}
	fams := checkParses(t, text(r))
	hm := fams["h"].Metric[0].Histogram
	if hm.GetSampleCount() != workers*n {
		t.Errorf("histogram count = %d, want %d", hm.GetSampleCount(), workers*n)
	}
}

// checkParses parses s with Prometheus's own text parser and returns the
// families by name.
func checkParses(t *testing.T, s string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader([]byte(s)))
	if err != nil {
		t.Fatalf("expfmt cannot parse the output: %v\n%s", err, s)
	}
	return fams
}

// BenchmarkScrape: one scrape of a registry the size of the agent's (17
// vectors of one env, two histograms, the runtime collectors).
func BenchmarkScrape(b *testing.B) {
	r := NewRegistry()
	for i := range 15 {
		c := NewCounterVec("c"+string(rune('a'+i))+"_total", "A counter.", "env", "result")
		c.WithLabelValues("prod", "succeeded").Inc()
		c.WithLabelValues("prod", "failed").Inc()
		r.MustRegister(c)
	}
	for i := range 2 {
		h := NewHistogramVec("h"+string(rune('a'+i))+"_seconds", "A histogram.", []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}, "env")
		h.WithLabelValues("prod").Observe(3)
		r.MustRegister(h)
	}
	r.MustRegister(NewProcessCollector(), NewGoCollector())
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendText(buf[:0])
	}
}
