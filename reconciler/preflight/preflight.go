// Package preflight runs the checks that come before a deploy changes
// anything: the Docker engine answers, the current nginx configuration
// passes its test, the AWS credentials are valid, every image to pull is in
// its registry, and the host has the memory and disk for the new color
// beside the old. Each check is a small interface so that tests can fail
// one at a time.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"

	"github.com/developer-mesh/reconciler/reconciler"
)

// Engine is the container engine as the checks see it.
type Engine interface {
	// Info returns the engine's version, its host's memory in bytes and its
	// data root directory.
	Info(ctx context.Context) (version string, memTotal int64, rootDir string, err error)
	// RunningMemory returns the memory limit (0 = none) of each running
	// container of ours, of every environment, by name.
	RunningMemory(ctx context.Context) (map[string]int64, error)
}

// Registry looks images up in their registries without pulling them.
type Registry interface {
	// Manifest returns the digest of ref's manifest, or an error that says
	// why the image is not available.
	Manifest(ctx context.Context, ref string) (string, error)
}

// NginxTester runs the nginx configuration test.
type NginxTester interface {
	// Test runs the configured test command; its error holds nginx's output.
	Test(ctx context.Context) error
}

// WorkerProbe proves that nginx's workers see the files of the conf dir,
// as they must see the markers that move traffic. nginx.Workers
// implements it.
type WorkerProbe interface {
	// ProbeWorkers returns what it proved, or an error that names the
	// file nginx does not see and the fix. It changes nothing that
	// routes traffic.
	ProbeWorkers(ctx context.Context) (string, error)
}

// Identity checks cloud credentials.
type Identity interface {
	// CallerIdentity returns whom the credentials belong to.
	CallerIdentity(ctx context.Context) (string, error)
}

// Result is the outcome of one check.
type Result struct {
	Name   string // "engine", "nginx", "aws", "image REF", "memory", "disk"
	Detail string // what was found, for a passing check
	Err    error
}

// Report is the results of the checks, in the order they ran.
type Report []Result

// Err joins the failures, each "check NAME: ERR", or nil when all passed.
func (r Report) Err() error {
	var errs []error
	for _, res := range r {
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("pre-deploy check %s failed: %w", res.Name, res.Err))
		}
	}
	return errors.Join(errs...)
}

// String lists every result on its own line: "ok   NAME: DETAIL" or
// "FAIL NAME: ERR".
func (r Report) String() string {
	var b strings.Builder
	for _, res := range r {
		if res.Err != nil {
			fmt.Fprintf(&b, "FAIL %s: %v\n", res.Name, res.Err)
		} else {
			fmt.Fprintf(&b, "ok   %s: %s\n", res.Name, res.Detail)
		}
	}
	return b.String()
}

// Checker runs the checks. Nil interfaces skip their checks.
type Checker struct {
	Engine   Engine
	Registry Registry
	Nginx    NginxTester
	// Workers runs after a passing nginx test.
	Workers WorkerProbe
	// Identity is set when the env file references AWS secrets.
	Identity Identity
	// HostMemory overrides the engine's MemTotal when > 0.
	HostMemory int64
	// MemoryReserve is kept free for the OS, nginx and the engine.
	MemoryReserve int64
	// MinDisk is the free space the engine's data root needs.
	MinDisk int64
	// FreeDisk returns the free bytes of the filesystem holding path;
	// statfs(2) when nil.
	FreeDisk func(path string) (int64, error)
}

// Host runs the checks that need no plan: engine, nginx (its test, then
// that its workers see the conf dir), AWS credentials.
// They come before secrets are resolved and the host is observed.
func (c *Checker) Host(ctx context.Context) Report {
	var r Report
	if c.Engine != nil {
		res := Result{Name: "engine"}
		if v, _, _, err := c.Engine.Info(ctx); err != nil {
			res.Err = fmt.Errorf("the Docker engine does not answer: %w", err)
		} else {
			res.Detail = "Docker " + v + " answers"
		}
		r = append(r, res)
	}
	if c.Nginx != nil {
		res := Result{Name: "nginx", Detail: "the current configuration passes its test"}
		if err := c.Nginx.Test(ctx); err != nil {
			res.Err = fmt.Errorf("the current nginx configuration fails its test, before any change: %w", err)
		}
		r = append(r, res)
		if c.Workers != nil && res.Err == nil {
			res := Result{Name: "nginx workers"}
			res.Detail, res.Err = c.Workers.ProbeWorkers(ctx)
			r = append(r, res)
		}
	}
	if c.Identity != nil {
		res := Result{Name: "aws"}
		if arn, err := c.Identity.CallerIdentity(ctx); err != nil {
			res.Err = err
		} else {
			res.Detail = "credentials valid for " + arn
		}
		r = append(r, res)
	}
	return r
}

// Plan runs the checks that need the plan: every image it pulls is in its
// registry, and the containers it starts fit in memory beside those running,
// and the engine's disk has MinDisk free.
func (c *Checker) Plan(ctx context.Context, p *reconciler.Plan) Report {
	var r Report
	if c.Registry != nil {
		for _, ch := range p.Changes {
			for _, s := range ch.Steps {
				if s.Action != reconciler.ActPull {
					continue
				}
				res := Result{Name: "image " + s.Image}
				if d, err := c.Registry.Manifest(ctx, s.Image); err != nil {
					res.Err = err
				} else {
					res.Detail = "in its registry as " + d
				}
				r = append(r, res)
			}
		}
	}
	if c.Engine == nil {
		return r
	}
	_, memTotal, rootDir, err := c.Engine.Info(ctx)
	if err != nil {
		return append(r, Result{Name: "memory", Err: err})
	}
	r = append(r, c.memory(ctx, p, memTotal))
	if c.MinDisk > 0 {
		d := c.disk(rootDir)
		if k, ok := c.Engine.(KeptEngine); ok {
			// The kept previous releases hold their layers and images.
			if kept, err := k.KeptMemory(ctx); err == nil {
				if n, _ := Kept(p, kept); n > 0 && d.Err != nil {
					d.Err = fmt.Errorf("%w; reconciler prune --previous removes the %d stopped previous-release container(s) kept for a rollback, and then their images", d.Err, n)
				} else if n > 0 {
					d.Detail += fmt.Sprintf("; %d stopped previous-release container(s) kept for a rollback hold their layers and images", n)
				}
			}
		}
		r = append(r, d)
	}
	return r
}

func (c *Checker) memory(ctx context.Context, p *reconciler.Plan, memTotal int64) Result {
	res := Result{Name: "memory"}
	if c.HostMemory > 0 {
		memTotal = c.HostMemory
	}
	running, err := c.Engine.RunningMemory(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	peak, now, unlimited := Peak(p, running)
	avail := memTotal - c.MemoryReserve
	if peak > avail {
		res.Err = fmt.Errorf("the deploy needs up to %s of memory limits at once (%s running now, new colors started beside the old), but the host has %s less a reserve of %s = %s; lower services' memory or free memory",
			Size(peak), Size(now), Size(memTotal), Size(c.MemoryReserve), Size(avail))
		if n := released(p); n > 0 {
			res.Err = fmt.Errorf("%w%s", res.Err, atomicAdvice(p, running, n, avail))
		}
		return res
	}
	res.Detail = fmt.Sprintf("peak %s of %s (host %s less reserve %s)", Size(peak), Size(avail), Size(memTotal), Size(c.MemoryReserve))
	if unlimited > 0 {
		res.Detail += fmt.Sprintf("; %d container(s) without a memory limit not counted", unlimited)
	}
	if k, ok := c.Engine.(KeptEngine); ok {
		kept, err := k.KeptMemory(ctx)
		if err != nil {
			res.Err = err
			return res
		}
		if n, sum := Kept(p, kept); n > 0 {
			res.Detail += fmt.Sprintf("; %d stopped previous-release container(s) kept for reconciler rollback (%s of limits, started beside the running ones by a rollback", n, Size(sum))
			if now+sum > avail {
				res.Detail += fmt.Sprintf(": %s with those running now, more than %s: a rollback may not fit", Size(now+sum), Size(avail))
			}
			res.Detail += ")"
		}
	}
	return res
}

// KeptEngine is an Engine that also reports the stopped containers kept
// as previous releases; the memory check counts them when it is one.
type KeptEngine interface {
	// KeptMemory returns the memory limit of each stopped container of
	// ours, by name.
	KeptMemory(ctx context.Context) (map[string]int64, error)
}

// Kept counts the kept (stopped) containers that are still kept after p:
// those p removes (a release replaces its previous one) are not. It
// returns how many and the sum of their memory limits.
func Kept(p *reconciler.Plan, kept map[string]int64) (n int, sum int64) {
	gone := map[string]bool{}
	for _, ch := range p.Changes {
		for _, s := range ch.Steps {
			if s.Action == reconciler.ActRemove || s.Action == reconciler.ActResume {
				gone[s.Name] = true
			}
		}
	}
	for name, m := range kept {
		if !gone[name] {
			n++
			sum += m
		}
	}
	return n, sum
}

// Peak walks the plan in order, as Apply runs it, from the running
// containers' memory limits (by name): each started container adds its
// limit, each removed or drained one takes its own away. It returns the
// highest sum, the sum now, and how many containers (running or started)
// have no limit and so count as 0.
func Peak(p *reconciler.Plan, running map[string]int64) (peak, now int64, unlimited int) {
	mem := make(map[string]int64, len(running))
	names := make([]string, 0, len(running))
	for n := range running {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mem[n] = running[n]
		now += running[n]
		if running[n] == 0 {
			unlimited++
		}
	}
	cur := now
	peak = now
	for _, ch := range p.Changes {
		for _, s := range flatten(ch.Steps) {
			switch s.Action {
			case reconciler.ActStart, reconciler.ActMigrate:
				m := s.Container.Spec.Memory
				if m == 0 && s.Action == reconciler.ActStart {
					unlimited++
				}
				cur -= mem[s.Container.Name] // a leftover of the same name is replaced
				mem[s.Container.Name] = m
				cur += m
				peak = max(peak, cur)
				if s.Action == reconciler.ActMigrate {
					cur -= m // the job ends before the next step
					delete(mem, s.Container.Name)
				}
			case reconciler.ActRemove, reconciler.ActDrain, reconciler.ActStop:
				cur -= mem[s.Name]
				delete(mem, s.Name)
			}
		}
	}
	return peak, now, unlimited
}

func (c *Checker) disk(rootDir string) Result {
	res := Result{Name: "disk"}
	free := c.FreeDisk
	if free == nil {
		free = statfsFree
	}
	n, err := free(rootDir)
	switch {
	case err != nil:
		res.Err = fmt.Errorf("free space of the engine's data root %s: %w", rootDir, err)
	case n < c.MinDisk:
		res.Err = fmt.Errorf("%s free on the filesystem of %s, want at least %s for images and containers; prune unused images (docker image prune)", Size(n), rootDir, Size(c.MinDisk))
	default:
		res.Detail = fmt.Sprintf("%s free on %s (want %s)", Size(n), rootDir, Size(c.MinDisk))
	}
	return res
}

func statfsFree(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Size formats bytes in Docker's units: "512m", "1.5g".
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", float64(n)/(1<<30)), "0"), ".") + "g"
	case n >= 1<<20:
		return fmt.Sprintf("%dm", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dk", n>>10)
	}
	return fmt.Sprintf("%db", n)
}
