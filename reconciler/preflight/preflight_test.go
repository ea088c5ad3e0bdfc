package preflight

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

const mib = 1 << 20

func start(name string, mem int64) reconciler.Step {
	return reconciler.Step{Action: reconciler.ActStart, Name: name, Container: &reconciler.ContainerSpec{Name: name, Spec: state.Spec{Memory: mem}}}
}

func drain(name string) reconciler.Step {
	return reconciler.Step{Action: reconciler.ActDrain, Name: name}
}

func TestPeak(t *testing.T) {
	running := map[string]int64{"p-api-blue": 512 * mib, "p-mcp-blue": 512 * mib, "p-worker-blue": 256 * mib}
	cases := []struct {
		name      string
		changes   []reconciler.Change
		peak      int64
		unlimited int
	}{
		{"nothing", nil, 1280 * mib, 0},
		{"replace one", []reconciler.Change{{Steps: []reconciler.Step{start("p-api-green", 512*mib), drain("p-api-blue")}}}, 1792 * mib, 0},
		{"replace all, one at a time", []reconciler.Change{
			{Steps: []reconciler.Step{start("p-api-green", 512*mib), drain("p-api-blue")}},
			{Steps: []reconciler.Step{start("p-mcp-green", 768*mib), drain("p-mcp-blue")}},
			{Steps: []reconciler.Step{start("p-worker-green", 256*mib), drain("p-worker-blue")}},
		}, 2048 * mib, 0},
		{"new service stays", []reconciler.Change{
			{Steps: []reconciler.Step{start("p-new-blue", 300*mib)}},
			{Steps: []reconciler.Step{start("p-api-green", 512*mib), drain("p-api-blue")}},
		}, 2092 * mib, 0},
		{"no limit", []reconciler.Change{{Steps: []reconciler.Step{start("p-x-blue", 0)}}}, 1280 * mib, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peak, now, unl := Peak(&reconciler.Plan{Changes: tc.changes}, running)
			if peak != tc.peak || now != 1280*mib || unl != tc.unlimited {
				t.Fatalf("Peak = %s now %s unlimited %d, want %s now 1280m unlimited %d", Size(peak), Size(now), unl, Size(tc.peak), tc.unlimited)
			}
		})
	}
}

type fakeEngine struct {
	err     error
	mem     int64
	running map[string]int64
}

func (f fakeEngine) Info(context.Context) (string, int64, string, error) {
	return "20.10.24", f.mem, "/var/lib/docker", f.err
}
func (f fakeEngine) RunningMemory(context.Context) (map[string]int64, error) { return f.running, nil }

type fakeRegistry map[string]string

func (f fakeRegistry) Manifest(_ context.Context, ref string) (string, error) {
	if d, ok := f[ref]; ok {
		return d, nil
	}
	return "", errors.New("manifest unknown")
}

type fakeNginx struct{ err error }

func (f fakeNginx) Test(context.Context) error { return f.err }

type fakeIdentity struct{ err error }

func (f fakeIdentity) CallerIdentity(context.Context) (string, error) {
	return "arn:aws:iam::1:user/x", f.err
}

func TestChecker(t *testing.T) {
	ctx := context.Background()
	plan := &reconciler.Plan{Changes: []reconciler.Change{
		{Steps: []reconciler.Step{{Action: reconciler.ActPull, Image: "ghcr.io/o/app:v2"}, {Action: reconciler.ActPull, Image: "ghcr.io/o/app:gone"}}},
		{Steps: []reconciler.Step{start("p-api-green", 512*mib), drain("p-api-blue")}},
	}}
	c := &Checker{
		Engine:   fakeEngine{mem: 2048 * mib, running: map[string]int64{"p-api-blue": 512 * mib, "p-mcp-blue": 512 * mib}},
		Registry: fakeRegistry{"ghcr.io/o/app:v2": "sha256:abc"},
		Nginx:    fakeNginx{}, Identity: fakeIdentity{},
		MemoryReserve: 256 * mib, MinDisk: 1 << 30,
		FreeDisk: func(string) (int64, error) { return 10 << 30, nil },
	}
	if err := c.Host(ctx).Err(); err != nil {
		t.Fatalf("host checks: %v", err)
	}
	r := c.Plan(ctx, plan)
	out := r.String()
	for _, want := range []string{"ok   image ghcr.io/o/app:v2: in its registry as sha256:abc", "FAIL image ghcr.io/o/app:gone: manifest unknown",
		"ok   memory: peak 1.5g of 1.75g", "ok   disk: 10g free"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "pre-deploy check image ghcr.io/o/app:gone failed") {
		t.Errorf("Err = %v", err)
	}

	// The memory check refuses a deploy that would not fit.
	c.HostMemory = 1280 * mib
	r = c.Plan(ctx, plan)
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "the deploy needs up to 1.5g of memory limits at once (1g running now") || !strings.Contains(err.Error(), "= 1g") {
		t.Errorf("memory over the host: %v", err)
	}
	c.FreeDisk = func(string) (int64, error) { return 100 * mib, nil }
	if err := c.Plan(ctx, plan).Err(); err == nil || !strings.Contains(err.Error(), "100m free on the filesystem of /var/lib/docker, want at least 1g") {
		t.Errorf("disk: %v", err)
	}

	c = &Checker{Engine: fakeEngine{err: errors.New("connection refused")}, Nginx: fakeNginx{errors.New("nginx: [emerg] unexpected }")}, Identity: fakeIdentity{errors.New("AWS credentials are not valid")}}
	err := c.Host(ctx).Err()
	for _, want := range []string{"check engine failed: the Docker engine does not answer: connection refused", "check nginx failed: the current nginx configuration fails its test, before any change: nginx: [emerg]", "check aws failed: AWS credentials are not valid"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("host checks lack %q:\n%v", want, err)
		}
	}
}

func TestStatfs(t *testing.T) {
	n, err := statfsFree(t.TempDir())
	if err != nil || n <= 0 {
		t.Fatalf("statfsFree = %d, %v", n, err)
	}
}

type fakeWorkers struct {
	err   error
	asked *int
}

func (f fakeWorkers) ProbeWorkers(context.Context) (string, error) {
	*f.asked++
	return "seen", f.err
}

// TestHostWorkers: the workers' probe runs after a passing nginx test and
// its failure fails the checks; after a failing test it does not run.
func TestHostWorkers(t *testing.T) {
	asked := 0
	c := &Checker{Nginx: fakeNginx{}, Workers: fakeWorkers{err: errors.New("nginx's workers do not see it"), asked: &asked}}
	r := c.Host(context.Background())
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "pre-deploy check nginx workers failed: nginx's workers do not see it") {
		t.Fatalf("Host = %v, want the workers' failure", err)
	}
	c.Nginx = fakeNginx{err: errors.New("bad config")}
	r = c.Host(context.Background())
	if asked != 1 || len(r) != 1 {
		t.Fatalf("after a failing nginx test the probe ran (%d) or results are %v", asked, r)
	}
}

// keptEngine is a fakeEngine that also reports kept (stopped) containers.
type keptEngine struct {
	fakeEngine
	kept map[string]int64
}

func (k keptEngine) KeptMemory(context.Context) (map[string]int64, error) { return k.kept, nil }

// TestMemoryCountsKept: the previous releases kept stopped are counted in
// the memory check's report (and said not to fit a rollback when they
// would not), except those the plan removes.
func TestMemoryCountsKept(t *testing.T) {
	ctx := context.Background()
	plan := &reconciler.Plan{Changes: []reconciler.Change{
		{Steps: []reconciler.Step{{Action: reconciler.ActRemove, Name: "p-api-green"}, start("p-api-green", 512*mib), drain("p-api-blue")}},
	}}
	eng := keptEngine{fakeEngine{mem: 2048 * mib, running: map[string]int64{"p-api-blue": 512 * mib, "p-mcp-blue": 512 * mib}},
		map[string]int64{"p-api-green": 512 * mib, "p-mcp-green": 512 * mib}}
	c := &Checker{Engine: eng, MemoryReserve: 256 * mib, MinDisk: 1 << 30,
		FreeDisk: func(string) (int64, error) { return 512 << 20, nil }}
	out := c.Plan(ctx, plan).String()
	if !strings.Contains(out, "prune --previous removes the 1 stopped previous-release container(s)") {
		t.Fatalf("disk report:\n%s", out)
	}
	if !strings.Contains(out, "1 stopped previous-release container(s) kept for reconciler rollback (512m of limits") || strings.Contains(out, "may not fit") {
		t.Fatalf("memory report:\n%s", out)
	}
	eng.kept["p-web-green"] = 1024 * mib
	c.Engine = eng
	if out := c.Plan(ctx, plan).String(); !strings.Contains(out, "a rollback may not fit") {
		t.Fatalf("memory report with too much kept:\n%s", out)
	}
}
