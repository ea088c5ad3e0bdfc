package host

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/preflight"
	"github.com/developer-mesh/reconciler/reconciler/statedir"
	"github.com/developer-mesh/reconciler/state"
)

// fakeRuntime answers what the application layer reads; a method it does
// not override is the nil embedded interface's, so an unexpected call
// panics and fails the test.
type fakeRuntime struct {
	reconciler.Runtime
	snap   state.Snapshot
	res    []state.Resources
	images map[string]state.ImageInfo
	inUse  map[string]bool
	calls  []string
}

func (f *fakeRuntime) Observe(_ context.Context, env string, _ []string) (state.Snapshot, error) {
	f.calls = append(f.calls, "observe "+env)
	return f.snap, nil
}

func (f *fakeRuntime) Resources(context.Context, string) ([]state.Resources, error) {
	return f.res, nil
}

func (f *fakeRuntime) StreamLogs(context.Context, string, int, bool, io.Writer, io.Writer) error {
	return nil
}

func (f *fakeRuntime) ImagesInUse(context.Context) (map[string]bool, error) { return f.inUse, nil }

func (f *fakeRuntime) ImageInfo(_ context.Context, id string) (state.ImageInfo, bool, error) {
	i, ok := f.images[id]
	return i, ok, nil
}

func (f *fakeRuntime) RemoveImage(_ context.Context, info state.ImageInfo) error {
	f.calls = append(f.calls, "remove-image "+info.ID)
	delete(f.images, info.ID)
	return nil
}

func (f *fakeRuntime) UnusedProxyImages(context.Context, map[string]bool) ([]state.ImageInfo, error) {
	return nil, nil
}

// fakeEdge returns its sites.
type fakeEdge struct {
	reconciler.Edge
	sites []state.Site
}

func (f *fakeEdge) Observe(context.Context, string, string) ([]state.Site, error) {
	return f.sites, nil
}

// fakeProber passes the ports in ok.
type fakeProber struct{ ok map[int]bool }

func (p fakeProber) Check(_ context.Context, port int, _ string, _ time.Duration) error {
	if p.ok[port] {
		return nil
	}
	return errors.New("connection refused")
}

func (fakeProber) Smoke(context.Context, reconciler.SmokeRequest, time.Duration) error { return nil }

func newTestHost(t *testing.T, rt *fakeRuntime, edge *fakeEdge) *Host {
	t.Helper()
	dir, err := statedir.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Host{Runtime: rt, Edge: edge, Dir: dir, Key: []byte("k"), Prober: fakeProber{ok: map[int]bool{21001: true}},
		Log: zaptest.NewLogger(t), Out: io.Discard}
}

func testEnv() *state.Env {
	e := &state.Env{Environment: "t1", Services: map[string]state.Service{
		"web":    {Image: "web:v2", ContainerPort: 8080},
		"worker": {Image: "worker:v1"},
	}}
	e.Default()
	return e
}

// TestStatus: the live container of each service comes from the one rule,
// workers included; the others are listed; health is one check.
func TestStatus(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rt := &fakeRuntime{snap: state.Snapshot{Containers: []state.Container{
		{Name: "t1-web-blue", Service: "web", Color: state.Blue, State: "running", HostPort: 21000, Spec: state.Summary{Image: "web:v1"}},
		{Name: "t1-web-green", Service: "web", Color: state.Green, State: "running", HostPort: 21001, Spec: state.Summary{Image: "web:v2"}},
		{Name: "t1-worker-blue", Service: "worker", Color: state.Blue, State: "exited", StartedAt: t0},
		{Name: "t1-worker-green", Service: "worker", Color: state.Green, State: "running", StartedAt: t0.Add(time.Hour)},
		{Name: "t1-old-blue", Service: "old", Color: state.Blue, State: "running"},
	}}, res: []state.Resources{{Name: "t1-web-green", Running: true, MemoryBytes: 10, MemoryLimitBytes: 100}}}
	h := newTestHost(t, rt, &fakeEdge{sites: []state.Site{{Service: "web", Live: state.Green}}})
	st, err := h.Status(context.Background(), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range st.Services {
		got = append(got, strings.Join([]string{r.Service, r.Container, r.Health, r.DesiredImage, strings.Join(r.Others, "+")}, " "))
	}
	want := []string{
		"old t1-old-blue running (not in env file) ",
		"web t1-web-green healthy web:v2 t1-web-blue",
		"worker t1-worker-green running worker:v1 t1-worker-blue",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("status rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st.Services[1].MemoryBytes != 10 || st.Services[1].MemoryLimitBytes != 100 {
		t.Errorf("memory of web = %d / %d", st.Services[1].MemoryBytes, st.Services[1].MemoryLimitBytes)
	}
	// The agent's /status marks the same containers live.
	var live []string
	for _, s := range AgentServices(&state.Observed{Containers: rt.snap.Containers, Sites: []state.Site{{Service: "web", Live: state.Green}}}) {
		if s.Live {
			live = append(live, s.Container)
		}
	}
	if strings.Join(live, " ") != "t1-web-green t1-worker-green t1-old-blue" {
		t.Errorf("/status live containers = %v", live)
	}
}

// failingChecks fails the host check.
type failingChecks struct{}

func (failingChecks) Host(context.Context) preflight.Report {
	return preflight.Report{{Name: "nginx", Err: errors.New("nginx -t failed")}}
}

func (failingChecks) Plan(context.Context, *reconciler.Plan) preflight.Report { return nil }

// TestDeployStopsAtChecks: a failed pre-deploy check stops the deploy
// before the backup and before any call that changes the host.
func TestDeployStopsAtChecks(t *testing.T) {
	t.Parallel()
	rt := &fakeRuntime{}
	h := newTestHost(t, rt, &fakeEdge{})
	e := testEnv()
	d := &state.Desired{Env: "t1", Commit: "c0ffee"}
	p := &reconciler.Plan{Env: "t1", Commit: "c0ffee", Changes: []reconciler.Change{{Kind: reconciler.Create, Subject: "web",
		Steps: []reconciler.Step{{Action: reconciler.ActStart, Target: "web/blue"}}}}}
	_, err := h.Deploy(context.Background(), &Planned{Env: e, Desired: d, Observed: &state.Observed{}, Plan: p}, DeployOptions{Checks: failingChecks{}})
	if err == nil || !strings.Contains(err.Error(), "nginx -t failed") || !strings.HasSuffix(err.Error(), "nothing was changed") {
		t.Fatalf("deploy error = %v; want the check's error and 'nothing was changed'", err)
	}
	if len(rt.calls) != 0 {
		t.Errorf("engine calls %v; want none", rt.calls)
	}
	if _, err := os.Stat(h.Dir.BackupDir("t1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a backup was taken: %v", err)
	}
}

// TestRetain: images beyond keep that no container uses are removed; a dry
// run removes nothing and records nothing.
func TestRetain(t *testing.T) {
	t.Parallel()
	rt := &fakeRuntime{
		snap: state.Snapshot{Containers: []state.Container{{Name: "t1-web-blue", Service: "web", Color: state.Blue, State: "running",
			ImageID: "sha256:3333333333333333", Spec: state.Summary{Image: "web:v3"}}}},
		images: map[string]state.ImageInfo{
			"sha256:1111111111111111": {ID: "sha256:1111111111111111", Tags: []string{"web:v1"}, Size: 1 << 20},
			"sha256:2222222222222222": {ID: "sha256:2222222222222222", Tags: []string{"web:v2"}, Size: 2 << 20},
			"sha256:3333333333333333": {ID: "sha256:3333333333333333", Tags: []string{"web:v3"}, Size: 3 << 20},
		},
		inUse: map[string]bool{"sha256:3333333333333333": true},
	}
	h := newTestHost(t, rt, &fakeEdge{})
	hist := state.ImageHistory{}
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hist.Record("web", state.ImageUse{ID: "sha256:1111111111111111", Ref: "web:v1", Last: old})
	hist.Record("web", state.ImageUse{ID: "sha256:2222222222222222", Ref: "web:v2", Last: old.Add(time.Hour)})
	if err := h.Dir.RecordImages("t1", hist); err != nil {
		t.Fatal(err)
	}
	rep, err := h.Retain(context.Background(), "t1", 2, true)
	if err != nil || len(rep.Removed) != 1 || rep.Removed[0].Ref != "web:v1" || len(rt.images) != 3 {
		t.Fatalf("dry run: %+v, %v, images left %d", rep, err, len(rt.images))
	}
	rep, err = h.Retain(context.Background(), "t1", 2, false)
	if err != nil || len(rep.Removed) != 1 || rep.Freed != 1<<20 {
		t.Fatalf("prune: %+v, %v", rep, err)
	}
	if _, ok := rt.images["sha256:1111111111111111"]; ok {
		t.Fatal("web:v1 was not removed")
	}
	var out strings.Builder
	rep.Print(&out, false)
	if !strings.Contains(out.String(), "removed web:v1 (111111111111, 1.0 MB)") {
		t.Errorf("report:\n%s", out.String())
	}
	if b, err := os.ReadFile(filepath.Join(h.Dir.Path(), "t1.images")); err != nil || strings.Contains(string(b), "web:v1") {
		t.Errorf("image history after prune: %s %v", b, err)
	}
}

// fakeSiteChecks records the checks asked for and fails for one FQDN.
type fakeSiteChecks struct {
	asked []string
	fail  string
}

func (f *fakeSiteChecks) EnsureHealthCheck(_ context.Context, c state.SiteHealthCheck) (string, string, error) {
	f.asked = append(f.asked, c.FQDN)
	if c.FQDN == f.fail {
		return "", "", errors.New("throttled")
	}
	return "id-" + c.Service, "created", nil
}

type siteCloud struct {
	Cloud
	sc *fakeSiteChecks
}

func (c siteCloud) SiteChecks(context.Context) (SiteChecks, error) { return c.sc, nil }

// TestSyncSiteChecks: every public site is ensured, in service order, a
// failing one is reported without stopping the others, and an env without
// route53.healthChecks or without AWS access behaves as documented.
func TestSyncSiteChecks(t *testing.T) {
	h := newTestHost(t, &fakeRuntime{}, &fakeEdge{})
	e := &state.Env{Environment: "test", Route53: &state.Route53Sites{HealthChecks: &state.SiteCheckSettings{}}, Services: map[string]state.Service{
		"web": {Listen: "443 ssl", ServerName: "www.example.com", TLS: &state.TLS{}},
		"api": {Listen: "80", ServerName: "api.example.com"},
	}}
	sc := &fakeSiteChecks{fail: "www.example.com"}
	lines, err := h.SyncSiteChecks(context.Background(), e, siteCloud{sc: sc})
	if want := []string{"route53 api: api.example.com HTTP:80/health created (id-api)"}; !slices.Equal(lines, want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if err == nil || !strings.Contains(err.Error(), "route53 web: throttled") || !slices.Equal(sc.asked, []string{"api.example.com", "www.example.com"}) {
		t.Errorf("err %v, asked %v", err, sc.asked)
	}
	if _, err := h.SyncSiteChecks(context.Background(), e, nil); err == nil || !strings.Contains(err.Error(), "no AWS access") {
		t.Errorf("without AWS: %v", err)
	}
	e.Route53 = nil
	if lines, err := h.SyncSiteChecks(context.Background(), e, nil); lines != nil || err != nil {
		t.Errorf("without route53.healthChecks: %v %v", lines, err)
	}
}
