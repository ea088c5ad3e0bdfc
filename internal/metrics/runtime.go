package metrics

import (
	"bytes"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync"
)

// The process_ and go_ families of client_golang's process and Go
// collectors that this package keeps, with their names, HELP texts and
// types unchanged. Left out: go_gc_duration_seconds (a summary of GC
// pauses), go_memstats_last_gc_time_seconds (runtime/metrics does not
// have it; MemStats stops the world) and process_network_*_bytes_total
// (they read the network namespace's counters, not the process's).

// NewProcessCollector returns a collector of this process's CPU time,
// memory, open files and start time, read from /proc/self at each scrape
// (on a system without /proc it writes nothing).
func NewProcessCollector() Collector { return processCollector{} }

type processCollector struct{}

var (
	procCPU     = NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", CounterType)
	procOpen    = NewDesc("process_open_fds", "Number of open file descriptors.", GaugeType)
	procMaxFDs  = NewDesc("process_max_fds", "Maximum number of open file descriptors.", GaugeType)
	procVirt    = NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", GaugeType)
	procVirtMax = NewDesc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", GaugeType)
	procRSS     = NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", GaugeType)
	procStart   = NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", GaugeType)
)

// Describe implements Collector.
func (processCollector) Describe() []*Desc {
	return []*Desc{procCPU, procOpen, procMaxFDs, procVirt, procVirtMax, procRSS, procStart}
}

// userHZ is the unit of the clock ticks of /proc/self/stat: 100 on every
// Linux architecture Go supports (sysconf(_SC_CLK_TCK) without cgo).
const userHZ = 100

// bootTime is the btime line of /proc/stat, read once: it does not change.
var bootTime = sync.OnceValue(func() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			if f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64); err == nil {
				return f
			}
		}
	}
	return -1
})

// Collect implements Collector.
func (processCollector) Collect(s *Sink) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// Fields after the command name, which is in parentheses and may
		// hold spaces: state is field 3 of proc(5), so f[i] is field i+3.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			f := bytes.Fields(b[i+1:])
			num := func(field int) float64 {
				if field-3 >= len(f) {
					return 0
				}
				v, _ := strconv.ParseFloat(string(f[field-3]), 64)
				return v
			}
			s.Add(procCPU, (num(14)+num(15))/userHZ)
			s.Add(procVirt, num(23))
			s.Add(procRSS, num(24)*float64(os.Getpagesize()))
			if bt := bootTime(); bt >= 0 {
				s.Add(procStart, bt+num(22)/userHZ)
			}
		}
	}
	if d, err := os.Open("/proc/self/fd"); err == nil {
		names, err := d.Readdirnames(-1)
		d.Close()
		if err == nil {
			s.Add(procOpen, float64(len(names)-1)) // the directory itself was open
		}
	}
	if b, err := os.ReadFile("/proc/self/limits"); err == nil {
		if v, ok := softLimit(b, "Max open files"); ok {
			s.Add(procMaxFDs, v)
		}
		if v, ok := softLimit(b, "Max address space"); ok {
			s.Add(procVirtMax, v)
		}
	}
}

// softLimit returns the soft limit of the line of /proc/self/limits that
// starts with name; unlimited is 2^64-1, as client_golang wrote it.
func softLimit(limits []byte, name string) (float64, bool) {
	for line := range bytes.Lines(limits) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		if string(f[0]) == "unlimited" {
			return float64(^uint64(0)), true
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		return v, err == nil
	}
	return 0, false
}

// NewGoCollector returns a collector of the Go runtime: goroutines,
// threads, version, GC settings and the heap and stack sizes, read from
// runtime/metrics, which does not stop the world.
func NewGoCollector() Collector {
	c := &goCollector{}
	for _, g := range goGauges() {
		c.idx = append(c.idx, make([]int, len(g.keys)))
	}
	keyIdx := map[string]int{}
	for gi, g := range goGauges() {
		for ki, k := range g.keys {
			i, ok := keyIdx[k]
			if !ok {
				i = len(c.samples)
				keyIdx[k] = i
				c.samples = append(c.samples, rtmetrics.Sample{Name: k})
			}
			c.idx[gi][ki] = i
		}
	}
	return c
}

// goGauge is a family computed as the sum of runtime/metrics values.
type goGauge struct {
	desc *Desc
	keys []string
}

// goGauges is made on first use: a process that never serves /metrics
// (every command but the agent) does not pay for it at init.
var goGauges = sync.OnceValue(func() []goGauge {
	g := func(name, help string, typ Type, keys ...string) goGauge {
		return goGauge{NewDesc(name, help, typ), keys}
	}
	const (
		heapObjects  = "/memory/classes/heap/objects:bytes"
		heapUnused   = "/memory/classes/heap/unused:bytes"
		heapReleased = "/memory/classes/heap/released:bytes"
		heapFree     = "/memory/classes/heap/free:bytes"
		heapStacks   = "/memory/classes/heap/stacks:bytes"
		tinyAllocs   = "/gc/heap/tiny/allocs:objects"
		mcacheInuse  = "/memory/classes/metadata/mcache/inuse:bytes"
		mspanInuse   = "/memory/classes/metadata/mspan/inuse:bytes"
	)
	return []goGauge{
		g("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100. This value is set by the GOGC environment variable, and the runtime/debug.SetGCPercent function. Sourced from /gc/gogc:percent.", GaugeType, "/gc/gogc:percent"),
		g("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64. This value is set by the GOMEMLIMIT environment variable, and the runtime/debug.SetMemoryLimit function. Sourced from /gc/gomemlimit:bytes.", GaugeType, "/gc/gomemlimit:bytes"),
		g("go_goroutines", "Number of goroutines that currently exist.", GaugeType, "/sched/goroutines:goroutines"),
		g("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use. Equals to /memory/classes/heap/objects:bytes.", GaugeType, heapObjects),
		g("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already. Equals to /gc/heap/allocs:bytes.", CounterType, "/gc/heap/allocs:bytes"),
		g("go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table. Equals to /memory/classes/profiling/buckets:bytes.", GaugeType, "/memory/classes/profiling/buckets:bytes"),
		g("go_memstats_frees_total", "Total number of heap objects frees. Equals to /gc/heap/frees:objects + /gc/heap/tiny/allocs:objects.", CounterType, "/gc/heap/frees:objects", tinyAllocs),
		g("go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata. Equals to /memory/classes/metadata/other:bytes.", GaugeType, "/memory/classes/metadata/other:bytes"),
		g("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes. Equals to /memory/classes/heap/objects:bytes.", GaugeType, heapObjects),
		g("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used. Equals to /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", GaugeType, heapReleased, heapFree),
		g("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes", GaugeType, heapObjects, heapUnused),
		g("go_memstats_heap_objects", "Number of currently allocated objects. Equals to /gc/heap/objects:objects.", GaugeType, "/gc/heap/objects:objects"),
		g("go_memstats_heap_released_bytes", "Number of heap bytes released to OS. Equals to /memory/classes/heap/released:bytes.", GaugeType, heapReleased),
		g("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system. Equals to /memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes + /memory/classes/heap/released:bytes + /memory/classes/heap/free:bytes.", GaugeType, heapObjects, heapUnused, heapReleased, heapFree),
		g("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed. Semantically a counter version for go_memstats_heap_objects gauge. Equals to /gc/heap/allocs:objects + /gc/heap/tiny/allocs:objects.", CounterType, "/gc/heap/allocs:objects", tinyAllocs),
		g("go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures. Equals to /memory/classes/metadata/mcache/inuse:bytes.", GaugeType, mcacheInuse),
		g("go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system. Equals to /memory/classes/metadata/mcache/inuse:bytes + /memory/classes/metadata/mcache/free:bytes.", GaugeType, mcacheInuse, "/memory/classes/metadata/mcache/free:bytes"),
		g("go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures. Equals to /memory/classes/metadata/mspan/inuse:bytes.", GaugeType, mspanInuse),
		g("go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system. Equals to /memory/classes/metadata/mspan/inuse:bytes + /memory/classes/metadata/mspan/free:bytes.", GaugeType, mspanInuse, "/memory/classes/metadata/mspan/free:bytes"),
		g("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place. Equals to /gc/heap/goal:bytes.", GaugeType, "/gc/heap/goal:bytes"),
		g("go_memstats_other_sys_bytes", "Number of bytes used for other system allocations. Equals to /memory/classes/other:bytes.", GaugeType, "/memory/classes/other:bytes"),
		g("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments. Equals to /memory/classes/heap/stacks:bytes.", GaugeType, heapStacks),
		g("go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator. Equals to /memory/classes/heap/stacks:bytes + /memory/classes/os-stacks:bytes.", GaugeType, heapStacks, "/memory/classes/os-stacks:bytes"),
		g("go_memstats_sys_bytes", "Number of bytes obtained from system. Equals to /memory/classes/total:byte.", GaugeType, "/memory/classes/total:bytes"),
		g("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting, or the number of operating system threads that can execute user-level Go code simultaneously. Sourced from /sched/gomaxprocs:threads.", GaugeType, "/sched/gomaxprocs:threads"),
	}
})

var (
	goInfo    = NewDesc("go_info", "Information about the Go environment.", GaugeType, "version")
	goThreads = NewDesc("go_threads", "Number of OS threads created.", GaugeType)
)

type goCollector struct {
	mu      sync.Mutex // samples are read into in place
	samples []rtmetrics.Sample
	idx     [][]int // per goGauges entry, its samples
}

// Describe implements Collector.
func (c *goCollector) Describe() []*Desc {
	ds := []*Desc{goInfo, goThreads}
	for _, g := range goGauges() {
		ds = append(ds, g.desc)
	}
	return ds
}

// Collect implements Collector.
func (c *goCollector) Collect(s *Sink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rtmetrics.Read(c.samples)
	for gi, g := range goGauges() {
		sum, ok := 0.0, true
		for _, i := range c.idx[gi] {
			switch v := c.samples[i].Value; v.Kind() {
			case rtmetrics.KindUint64:
				sum += float64(v.Uint64())
			case rtmetrics.KindFloat64:
				sum += v.Float64()
			default: // not in this Go version
				ok = false
			}
		}
		if ok {
			s.Add(g.desc, sum)
		}
	}
	n, _ := runtime.ThreadCreateProfile(nil)
	s.Add(goThreads, float64(n))
	s.Add(goInfo, 1, runtime.Version())
}
