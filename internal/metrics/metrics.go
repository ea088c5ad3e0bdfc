// Package metrics is the small part of a Prometheus client that the
// reconciler uses: counter, gauge and histogram vectors with label names,
// collectors computed at scrape time, a registry that refuses duplicate
// names, and a writer of the text exposition format 0.0.4. It replaces
// github.com/prometheus/client_golang in the binaries, whose package init
// (with protobuf) cost every reconciler process megabytes of RSS.
//
// Output is stable: families sorted by name, labels by name, series by
// their label values. Every type is safe for concurrent use: the agent
// updates its metrics from goroutines while it is scraped.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Type is a metric family's type, as the # TYPE line writes it.
type Type string

// The types a family can have.
const (
	CounterType   Type = "counter"
	GaugeType     Type = "gauge"
	HistogramType Type = "histogram"
)

// Desc describes a metric family: its name, HELP text, type and label
// names. Descs are made once and never change.
type Desc struct {
	Name, Help string
	Type       Type
	Labels     []string
	// order lists the indexes of Labels sorted by label name: the order
	// labels are written and series sorted in.
	order []int
}

// NewDesc returns the description of a family. It panics on a name or
// label name that Prometheus would refuse, or a repeated label name: those
// are programming errors, as in client_golang's MustNewConstMetric.
func NewDesc(name, help string, typ Type, labels ...string) *Desc {
	if !validName(name, true) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", name))
	}
	d := &Desc{Name: name, Help: help, Type: typ, Labels: labels, order: make([]int, len(labels))}
	for i, l := range labels {
		if !validName(l, false) || strings.HasPrefix(l, "__") || (typ == HistogramType && l == "le") {
			panic(fmt.Sprintf("metrics: invalid label name %q of %s", l, name))
		}
		if slices.Contains(labels[:i], l) {
			panic(fmt.Sprintf("metrics: label %q of %s repeated", l, name))
		}
		d.order[i] = i
	}
	sort.Slice(d.order, func(a, b int) bool { return labels[d.order[a]] < labels[d.order[b]] })
	return d
}

// validName reports whether s is a legacy metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)
// or, without colons, a label name.
func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (colon && c == ':') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

func (d *Desc) checkValues(lvs []string) {
	if len(lvs) != len(d.Labels) {
		panic(fmt.Sprintf("metrics: %s has labels %q, got %d values %q", d.Name, d.Labels, len(lvs), lvs))
	}
}

// A Collector writes series of the families it describes at each scrape.
// The vectors of this package are Collectors; others compute their values
// when scraped (what client_golang's NewDesc and MustNewConstMetric did).
type Collector interface {
	// Describe returns the families the collector writes; it is called
	// once, at registration.
	Describe() []*Desc
	// Collect adds the collector's current series to s.
	Collect(s *Sink)
}

// Sink receives the series of one scrape.
type Sink struct {
	fams map[string]*family
}

type family struct {
	desc   *Desc
	series []series
}

type series struct {
	lvs []string
	v   float64
	h   *histSnapshot
}

// Add adds a counter or gauge series of d with labelValues (in the order
// of d.Labels). It panics when d is not registered, is a histogram, or the
// number of values is wrong. Add keeps labelValues until the scrape ends:
// do not change them.
func (s *Sink) Add(d *Desc, v float64, labelValues ...string) {
	if d.Type == HistogramType {
		panic(fmt.Sprintf("metrics: %s is a histogram: Sink.Add takes counters and gauges", d.Name))
	}
	s.add(d, series{lvs: labelValues, v: v})
}

func (s *Sink) add(d *Desc, se series) {
	f := s.fams[d.Name]
	if f == nil || f.desc != d {
		panic(fmt.Sprintf("metrics: %s collected but not registered", d.Name))
	}
	d.checkValues(se.lvs)
	f.series = append(f.series, se)
}

// ErrDuplicate is returned by Register for a family name already registered.
var ErrDuplicate = errors.New("metric family already registered")

// Registry holds collectors and writes their series.
type Registry struct {
	mu    sync.Mutex
	descs map[string]*Desc
	cs    []Collector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{descs: map[string]*Desc{}}
}

// Register adds c. It returns an error wrapping ErrDuplicate, and adds
// nothing, when a family of c is already registered (by c or another).
func (r *Registry) Register(c Collector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := c.Describe()
	for i, d := range ds {
		if r.descs[d.Name] != nil || slices.ContainsFunc(ds[:i], func(o *Desc) bool { return o.Name == d.Name }) {
			return fmt.Errorf("register %s: %w", d.Name, ErrDuplicate)
		}
	}
	for _, d := range ds {
		r.descs[d.Name] = d
	}
	r.cs = append(r.cs, c)
	return nil
}

// MustRegister registers every collector and panics on the first error.
func (r *Registry) MustRegister(cs ...Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Names returns the names of the registered families, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.descs))
	for n := range r.descs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// gather collects every collector's series, families sorted by name and
// each family's series by label values. Families without series are left
// out, as client_golang does.
func (r *Registry) gather() []*family {
	r.mu.Lock()
	s := &Sink{fams: make(map[string]*family, len(r.descs))}
	for n, d := range r.descs {
		s.fams[n] = &family{desc: d}
	}
	cs := slices.Clone(r.cs)
	r.mu.Unlock()
	for _, c := range cs {
		c.Collect(s)
	}
	fams := make([]*family, 0, len(s.fams))
	for _, f := range s.fams {
		if len(f.series) == 0 {
			continue
		}
		order := f.desc.order
		sort.SliceStable(f.series, func(a, b int) bool {
			x, y := f.series[a].lvs, f.series[b].lvs
			for _, i := range order {
				if x[i] != y[i] {
					return x[i] < y[i]
				}
			}
			return false
		})
		// Two series with the same labels would make the page invalid
		// (client_golang answered 500): keep the first.
		f.series = slices.CompactFunc(f.series, func(a, b series) bool { return slices.Equal(a.lvs, b.lvs) })
		fams = append(fams, f)
	}
	sort.Slice(fams, func(a, b int) bool { return fams[a].desc.Name < fams[b].desc.Name })
	return fams
}

// vec is the part the vectors share: a family and its children by label
// values.
type vec[T any] struct {
	desc *Desc
	make func() *T
	mu   sync.RWMutex
	kids map[string]*child[T]
}

type child[T any] struct {
	lvs []string
	m   *T
}

func newVec[T any](d *Desc, make func() *T) vec[T] {
	return vec[T]{desc: d, make: make, kids: map[string]*child[T]{}}
}

// key identifies a list of label values: each value with its length
// before it, so that no two lists share one.
func key(lvs []string) string {
	if len(lvs) == 1 {
		return lvs[0]
	}
	n := 0
	for _, v := range lvs {
		n += len(v) + 4
	}
	b := make([]byte, 0, n)
	for _, v := range lvs {
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b)
}

func (v *vec[T]) with(lvs []string) *T {
	v.desc.checkValues(lvs)
	k := key(lvs)
	v.mu.RLock()
	c := v.kids[k]
	v.mu.RUnlock()
	if c != nil {
		return c.m
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c = v.kids[k]; c == nil {
		c = &child[T]{lvs: slices.Clone(lvs), m: v.make()}
		v.kids[k] = c
	}
	return c.m
}

// DeleteLabelValues removes the series with labelValues; it reports
// whether there was one.
func (v *vec[T]) DeleteLabelValues(labelValues ...string) bool {
	if len(labelValues) != len(v.desc.Labels) {
		return false
	}
	k := key(labelValues)
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.kids[k]
	delete(v.kids, k)
	return ok
}

// Reset removes every series.
func (v *vec[T]) Reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	clear(v.kids)
}

// Len returns the number of series.
func (v *vec[T]) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.kids)
}

// Describe implements Collector.
func (v *vec[T]) Describe() []*Desc { return []*Desc{v.desc} }

func (v *vec[T]) collect(s *Sink, value func(*T) series) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, c := range v.kids {
		se := value(c.m)
		se.lvs = c.lvs
		s.add(v.desc, se)
	}
}

// value is a float64 updated atomically.
type value struct{ bits atomic.Uint64 }

func (v *value) get() float64  { return math.Float64frombits(v.bits.Load()) }
func (v *value) set(f float64) { v.bits.Store(math.Float64bits(f)) }
func (v *value) add(f float64) {
	for {
		old := v.bits.Load()
		if v.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+f)) {
			return
		}
	}
}

// Counter is a value that only goes up.
type Counter struct{ v value }

// Inc adds 1.
func (c *Counter) Inc() { c.v.add(1) }

// Add adds f; it panics when f is negative (a counter never decreases).
func (c *Counter) Add(f float64) {
	if f < 0 {
		panic("metrics: counter cannot decrease in value")
	}
	c.v.add(f)
}

// Value returns the counter's value.
func (c *Counter) Value() float64 { return c.v.get() }

// Gauge is a value that goes up and down.
type Gauge struct{ v value }

// Set sets the gauge to f.
func (g *Gauge) Set(f float64) { g.v.set(f) }

// Add adds f (negative to subtract).
func (g *Gauge) Add(f float64) { g.v.add(f) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.add(-1) }

// SetToCurrentTime sets the gauge to the current Unix time in seconds.
func (g *Gauge) SetToCurrentTime() { g.v.set(float64(time.Now().UnixNano()) / 1e9) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return g.v.get() }

// Histogram counts observations in buckets. A mutex keeps the buckets,
// sum and count of a scrape consistent with each other; observations are
// rare (a deploy, a fetch) next to the cost of a lock.
type Histogram struct {
	upper []float64 // shared with the vector, never changed
	les   []string  // upper formatted for the le label, shared too
	mu    sync.Mutex
	count []uint64 // per bucket, not cumulative; the last one is +Inf
	sum   float64
}

// Observe adds f.
func (h *Histogram) Observe(f float64) {
	i := sort.SearchFloat64s(h.upper, f) // the first bucket with f <= upper
	h.mu.Lock()
	h.count[i]++
	h.sum += f
	h.mu.Unlock()
}

type histSnapshot struct {
	les        []string
	cumulative []uint64 // per upper bound, then +Inf (the total count)
	sum        float64
}

func (h *Histogram) snapshot() *histSnapshot {
	s := &histSnapshot{les: h.les, cumulative: make([]uint64, len(h.count))}
	h.mu.Lock()
	defer h.mu.Unlock()
	var n uint64
	for i, c := range h.count {
		n += c
		s.cumulative[i] = n
	}
	s.sum = h.sum
	return s
}

// CounterVec is a family of counters with label names.
type CounterVec struct{ vec[Counter] }

// NewCounterVec returns a counter family.
func NewCounterVec(name, help string, labels ...string) *CounterVec {
	return &CounterVec{newVec(NewDesc(name, help, CounterType, labels...), func() *Counter { return new(Counter) })}
}

// WithLabelValues returns the counter of labelValues (in the order of the
// label names), made at 0 on first use. It panics on a wrong number of values.
func (v *CounterVec) WithLabelValues(labelValues ...string) *Counter { return v.with(labelValues) }

// Collect implements Collector.
func (v *CounterVec) Collect(s *Sink) {
	v.collect(s, func(c *Counter) series { return series{v: c.Value()} })
}

// GaugeVec is a family of gauges with label names.
type GaugeVec struct{ vec[Gauge] }

// NewGaugeVec returns a gauge family.
func NewGaugeVec(name, help string, labels ...string) *GaugeVec {
	return &GaugeVec{newVec(NewDesc(name, help, GaugeType, labels...), func() *Gauge { return new(Gauge) })}
}

// WithLabelValues returns the gauge of labelValues, made at 0 on first
// use. It panics on a wrong number of values.
func (v *GaugeVec) WithLabelValues(labelValues ...string) *Gauge { return v.with(labelValues) }

// Collect implements Collector.
func (v *GaugeVec) Collect(s *Sink) {
	v.collect(s, func(g *Gauge) series { return series{v: g.Value()} })
}

// HistogramVec is a family of histograms with label names and one set of
// bucket upper bounds.
type HistogramVec struct{ vec[Histogram] }

// NewHistogramVec returns a histogram family with buckets (upper bounds,
// increasing; the +Inf bucket is implied and a trailing +Inf dropped). It
// panics on buckets that do not increase.
func NewHistogramVec(name, help string, buckets []float64, labels ...string) *HistogramVec {
	upper := slices.Clone(buckets)
	if n := len(upper); n > 0 && math.IsInf(upper[n-1], 1) {
		upper = upper[:n-1]
	}
	for i := 1; i < len(upper); i++ {
		if !(upper[i] > upper[i-1]) {
			panic(fmt.Sprintf("metrics: buckets of %s do not increase: %v", name, buckets))
		}
	}
	les := make([]string, len(upper)+1)
	for i, u := range upper {
		les[i] = formatFloat(u)
	}
	les[len(upper)] = "+Inf"
	return &HistogramVec{newVec(NewDesc(name, help, HistogramType, labels...), func() *Histogram {
		return &Histogram{upper: upper, les: les, count: make([]uint64, len(upper)+1)}
	})}
}

// WithLabelValues returns the histogram of labelValues, made empty on first
// use. It panics on a wrong number of values.
func (v *HistogramVec) WithLabelValues(labelValues ...string) *Histogram { return v.with(labelValues) }

// Collect implements Collector.
func (v *HistogramVec) Collect(s *Sink) {
	v.collect(s, func(h *Histogram) series { return series{h: h.snapshot()} })
}
