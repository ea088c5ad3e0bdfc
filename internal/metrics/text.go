package metrics

import (
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText writes the registry's series to w in the text format 0.0.4:
// per family (sorted by name) its # HELP and # TYPE lines, then its series
// (sorted by label values); histograms as cumulative _bucket series with
// an le label, +Inf last, then _sum and _count.
func (r *Registry) WriteText(w io.Writer) error {
	_, err := w.Write(r.AppendText(nil))
	return err
}

// AppendText appends what WriteText writes to b.
func (r *Registry) AppendText(b []byte) []byte {
	for _, f := range r.gather() {
		b = appendFamily(b, f)
	}
	return b
}

// ServeHTTP serves the registry's series in the text format, gzipped when
// the client accepts it (as Prometheus does).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body := r.AppendText(make([]byte, 0, 16<<10))
	h := w.Header()
	h.Set("Content-Type", ContentType)
	if !acceptsGzip(req.Header.Get("Accept-Encoding")) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
		return
	}
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	zw := gzip.NewWriter(w)
	zw.Write(body)
	zw.Close()
}

// acceptsGzip reports whether an Accept-Encoding value lists gzip (with a
// weight other than 0).
func acceptsGzip(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
			return !ok || (q != "0" && q != "0.0" && q != "0.00" && q != "0.000")
		}
	}
	return false
}

func appendFamily(b []byte, f *family) []byte {
	d := f.desc
	b = append(b, "# HELP "...)
	b = append(b, d.Name...)
	b = append(b, ' ')
	b = appendEscaped(b, d.Help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, d.Name...)
	b = append(b, ' ')
	b = append(b, d.Type...)
	b = append(b, '\n')
	for _, s := range f.series {
		if s.h == nil {
			b = appendSample(b, d, "", s.lvs, "", s.v)
			continue
		}
		for i, le := range s.h.les { // +Inf last
			b = appendSample(b, d, "_bucket", s.lvs, le, float64(s.h.cumulative[i]))
		}
		n := s.h.cumulative[len(s.h.cumulative)-1]
		b = appendSample(b, d, "_sum", s.lvs, "", s.h.sum)
		b = appendSeries(b, d, "_count", s.lvs, "")
		b = strconv.AppendUint(b, n, 10)
		b = append(b, '\n')
	}
	return b
}

func appendSample(b []byte, d *Desc, suffix string, lvs []string, le string, v float64) []byte {
	b = appendSeries(b, d, suffix, lvs, le)
	b = appendFloat(b, v)
	return append(b, '\n')
}

// appendSeries appends the series name and its labels (sorted by name,
// le last) and the space before the value.
func appendSeries(b []byte, d *Desc, suffix string, lvs []string, le string) []byte {
	b = append(b, d.Name...)
	b = append(b, suffix...)
	if len(lvs) > 0 || le != "" {
		b = append(b, '{')
		for n, i := range d.order {
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, d.Labels[i]...)
			b = append(b, `="`...)
			b = appendEscaped(b, lvs[i], true)
			b = append(b, '"')
		}
		if le != "" {
			if len(lvs) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

// appendEscaped escapes \ and newline, and in label values also ".
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat formats f as client_golang's text encoder does: +Inf, -Inf,
// NaN, else the shortest representation in %g form (1.048576e+07, 0.25, 3).
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 0: // -0 included
		return append(b, '0')
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

func formatFloat(f float64) string { return string(appendFloat(nil, f)) }
