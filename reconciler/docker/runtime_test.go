package docker_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"go.uber.org/zap/zaptest"

	"github.com/developer-mesh/reconciler/internal/testenv"
	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/reconciler/docker"
	"github.com/developer-mesh/reconciler/state"
)

const appRef = "reconciler-test/docker-app:v1" // not the e2e tests' tag, which holds variant v1

// setup returns a runtime, its client and a fresh env whose containers are
// removed when t ends.
func setup(t testing.TB) (*docker.Runtime, *client.Client, string) {
	t.Helper()
	cli := testenv.Docker(t)
	env := testenv.UniqueEnv(t)
	testenv.RemoveEnvContainers(t, cli, env)
	var log = zaptest.NewLogger(t)
	if _, ok := t.(*testing.B); ok {
		log = nil
	}
	return docker.New(cli, log), cli, env
}

// serviceSpec is a container spec for service/color of env as the planner
// would make it: labels carry the value-free summary and its hash.
func serviceSpec(env, service string, color state.Color, hostPort int, spec state.Spec) reconciler.ContainerSpec {
	sum := spec.Summarize([]byte("test-key"))
	b, _ := json.Marshal(sum)
	labels := map[string]string{
		state.LabelEnv:        env,
		state.LabelService:    service,
		state.LabelColor:      string(color),
		state.LabelCommit:     "0123456789abcdef",
		state.LabelSpecHash:   sum.Hash(),
		state.LabelSpec:       string(b),
		state.LabelDeployedAt: "2024-05-01T10:00:00Z",
		state.LabelRole:       "service",
	}
	if hostPort > 0 {
		labels[state.LabelHostPort] = strconv.Itoa(hostPort)
	}
	return reconciler.ContainerSpec{Name: state.ContainerName(env, service, color), Labels: labels, Spec: spec, HostPort: hostPort}
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		<-tick.C
	}
}

func get(port int, pathQuery string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, pathQuery))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func waitHealthy(t testing.TB, port int) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		code, _, err := get(port, "/health")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("health: %d", code)
		}
		return nil
	})
}

func TestStartObserveInspectLogs(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()

	const secret = "s3cret-value-do-not-print"
	port := testenv.FreePort(t)
	spec := state.Spec{
		Image:   appRef,
		Env:     map[string]string{"VERSION": "v1", "PLAIN": "x"},
		Secrets: map[string]string{"DB_PASSWORD": secret},
		Files: []state.FileContent{
			{Target: "/etc/app/config.yaml", Content: []byte("answer: 42\n")},
			{Target: "/srv/deep/new/dir/data.txt", Content: []byte("deep")},
		},
		Memory:        64 << 20,
		ContainerPort: 8080,
	}
	cs := serviceSpec(env, "api", state.Blue, port, spec)
	if err := rt.Start(ctx, cs); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitHealthy(t, port)

	for target, want := range map[string]string{"/etc/app/config.yaml": "answer: 42\n", "/srv/deep/new/dir/data.txt": "deep"} {
		code, body, err := get(port, "/file?path="+target)
		if err != nil || code != 200 || body != want {
			t.Errorf("file %s: got %d %q %v, want %q", target, code, body, err, want)
		}
	}
	sum := sha256.Sum256([]byte(secret))
	if _, body, err := get(port, "/envhash?name=DB_PASSWORD"); err != nil || strings.TrimSpace(body) != hex.EncodeToString(sum[:]) {
		t.Errorf("secret env: got %q %v", body, err)
	}
	if _, body, _ := get(port, "/"); !strings.HasPrefix(body, "version=v1 ") {
		t.Errorf("GET /: %q", body)
	}

	raw, err := cli.ContainerInspect(ctx, cs.Name)
	if err != nil {
		t.Fatal(err)
	}
	hc := raw.HostConfig
	if hc.Memory != 64<<20 || hc.MemorySwap != 64<<20 {
		t.Errorf("memory %d swap %d, want both %d", hc.Memory, hc.MemorySwap, 64<<20)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("restart policy %q", hc.RestartPolicy.Name)
	}
	if b := hc.PortBindings[nat.Port("8080/tcp")]; len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != strconv.Itoa(port) {
		t.Errorf("port bindings %+v", hc.PortBindings)
	}

	snap, err := rt.Observe(ctx, env, []string{appRef, "reconciler-test/absent:nope", appRef})
	if err != nil {
		t.Fatalf("observe: %v", err)
	}
	ours, foreign, ids := snap.Containers, snap.Foreign, snap.ImageIDs
	// Another test process may import the app under the same tag meanwhile,
	// so compare with what the container runs, not with a remembered ID.
	if !strings.HasPrefix(ids[appRef], "sha256:") || ids["reconciler-test/absent:nope"] != "" || len(ids) != 2 {
		t.Errorf("image ids %v, want an ID for %s and \"\" for the absent one", ids, appRef)
	}
	for _, f := range foreign {
		if strings.HasPrefix(f.Name, env) {
			t.Errorf("our container listed as foreign: %+v", f)
		}
	}
	if len(ours) != 1 {
		t.Fatalf("ours: %+v, want 1", ours)
	}
	c := ours[0]
	wantSum := spec.Summarize([]byte("test-key"))
	if c.Name != cs.Name || c.Service != "api" || c.Color != state.Blue || c.Commit != "0123456789abcdef" ||
		c.SpecHash != wantSum.Hash() || c.Spec.Hash() != wantSum.Hash() || c.HostPort != port ||
		c.Memory != 64<<20 || c.State != "running" || !c.Running() || c.ImageID != raw.Image ||
		c.StartedAt.IsZero() || !c.DeployedAt.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) || c.ID == "" {
		t.Errorf("observed container %+v", c)
	}
	if b, _ := json.Marshal(c); bytes.Contains(b, []byte(secret)) {
		t.Errorf("secret value in the observed container")
	}

	got, err := rt.Inspect(ctx, cs.Name)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if got.SpecHash != c.SpecHash || got.ID != c.ID || got.HostPort != port {
		t.Errorf("inspect %+v, observe %+v", got, c)
	}

	logs, err := rt.Logs(ctx, cs.Name, 50)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	if !strings.Contains(logs, "app v1 listening on :8080") {
		t.Errorf("logs %q lack the start line", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("secret in logs")
	}
}

func TestObserveForeignUntouched(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()

	// A foreign container: no labels, a loopback port, a name like ours.
	port := testenv.FreePort(t)
	name := state.ContainerName(env, "api", state.Blue)
	foreignID := createRaw(t, cli, name, nil, port)
	// Another env's container is foreign to env; a migrations job of env is
	// in neither list.
	createRaw(t, cli, env+"-other", map[string]string{state.LabelEnv: env + "x"}, 0)
	createRaw(t, cli, env+"-migrate", map[string]string{state.LabelEnv: env, state.LabelRole: "migrations"}, 0)
	// env's name proxy is in its own list; another env's is foreign, with
	// its owner: its name may collide with one of env's (issue 14).
	proxyLabels := func(e string) map[string]string {
		return map[string]string{state.LabelProxyEnv: e, state.LabelRole: state.RoleNameProxy, state.LabelService: "api",
			state.LabelProxyPort: "8080", state.LabelProxyNet: e}
	}
	createRaw(t, cli, state.NameProxyName(env, "api"), proxyLabels(env), 0)
	createRaw(t, cli, state.NameProxyName(env+"x", "api"), proxyLabels(env+"x"), 0)

	var foreign []state.Foreign
	eventually(t, 10*time.Second, func() error {
		snap, err := rt.Observe(ctx, env, nil)
		if err != nil {
			return err
		}
		ours, f := snap.Containers, snap.Foreign
		if len(ours) != 0 {
			return fmt.Errorf("ours = %+v, want none", ours)
		}
		want := state.NameProxy{Name: state.NameProxyName(env, "api"), Service: "api", Port: 8080, Network: env, State: "running"}
		if len(snap.NameProxies) != 1 || snap.NameProxies[0] != want {
			return fmt.Errorf("name proxies %+v, want only %+v", snap.NameProxies, want)
		}
		foreign = f
		for _, x := range f {
			if x.Name == name && len(x.HostPorts) == 1 && x.HostPorts[0] == port {
				return nil
			}
		}
		return fmt.Errorf("foreign %s with port %d not in %+v", name, port, f)
	})
	otherEnv, otherProxy := false, false
	for i, f := range foreign {
		otherEnv = otherEnv || f.Name == env+"-other" && f.Owner == "env "+env+"x, service "
		otherProxy = otherProxy || f.Name == state.NameProxyName(env+"x", "api") && f.Owner == "env "+env+"x, service api"
		if f.Name == env+"-migrate" || f.Name == state.NameProxyName(env, "api") {
			t.Errorf("%s listed as foreign", f.Name)
		}
		if i > 0 && foreign[i-1].Name > f.Name {
			t.Errorf("foreign not sorted: %s before %s", foreign[i-1].Name, f.Name)
		}
	}
	if !otherEnv || !otherProxy {
		t.Errorf("another env's container %s-other or name proxy is not in foreign with its owner: %+v", env, foreign)
	}

	// Remove refuses; Start with its name fails; it stays as it was.
	if err := rt.Remove(ctx, name, time.Second); err == nil || !strings.Contains(err.Error(), "leaves it alone") {
		t.Errorf("remove of a foreign container: %v, want a refusal", err)
	}
	err := rt.Start(ctx, serviceSpec(env, "api", state.Blue, testenv.FreePort(t), state.Spec{Image: appRef, ContainerPort: 8080}))
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("start over an existing name: %v, want an 'already exists' error", err)
	}
	ci, err := cli.ContainerInspect(ctx, name)
	if err != nil || ci.ID != foreignID || !ci.State.Running {
		t.Errorf("foreign container changed: %v %+v", err, ci.State)
	}
}

// createRaw creates and starts a container of the app image directly
// through the client, as someone else on the host would.
func createRaw(t testing.TB, cli *client.Client, name string, labels map[string]string, port int) string {
	t.Helper()
	ctx := context.Background()
	cfg := &container.Config{Image: appRef, Labels: labels, Cmd: []string{"worker"}}
	host := &container.HostConfig{}
	if port > 0 {
		cfg.Cmd = nil
		cfg.ExposedPorts = nat.PortSet{"8080/tcp": {}}
		host.PortBindings = nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}}
	}
	resp, err := cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return resp.ID
}

func TestInspectNotFound(t *testing.T) {
	t.Parallel()
	rt, _, env := setup(t)
	_, err := rt.Inspect(context.Background(), env+"-nope-blue")
	if !errors.Is(err, reconciler.ErrNotFound) {
		t.Fatalf("inspect of a missing container: %v, want ErrNotFound", err)
	}
	if _, err := rt.Logs(context.Background(), env+"-nope-blue", 10); !errors.Is(err, reconciler.ErrNotFound) {
		t.Errorf("logs of a missing container: %v, want ErrNotFound", err)
	}
}

func TestRemoveIdempotent(t *testing.T) {
	t.Parallel()
	rt, _, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()

	cs := serviceSpec(env, "worker", state.Green, 0, state.Spec{Image: appRef, Command: []string{"worker"}})
	if err := rt.Start(ctx, cs); err != nil {
		t.Fatalf("start: %v", err)
	}
	eventually(t, 10*time.Second, func() error {
		logs, err := rt.Logs(ctx, cs.Name, 5)
		if err != nil || !strings.Contains(logs, "heartbeat") {
			return fmt.Errorf("no heartbeat yet: %q %v", logs, err)
		}
		return nil
	})
	start := time.Now()
	if err := rt.Remove(ctx, cs.Name, 5*time.Second); err != nil {
		t.Fatalf("remove: %v", err)
	}
	// The worker stops on SIGTERM: no need to wait for the kill.
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("remove took %s; SIGTERM was not honoured", d)
	}
	if _, err := rt.Inspect(ctx, cs.Name); !errors.Is(err, reconciler.ErrNotFound) {
		t.Errorf("after remove: %v, want ErrNotFound", err)
	}
	if err := rt.Remove(ctx, cs.Name, time.Second); err != nil {
		t.Errorf("second remove: %v, want nil", err)
	}
}

func TestStartFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()
	const secret = "hunter2-secret"

	// The host port is taken: create succeeds, start fails.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	cases := []struct {
		name string
		cs   reconciler.ContainerSpec
	}{
		{"image absent", serviceSpec(env, "a", state.Blue, 0, state.Spec{Image: "reconciler-test/absent:nope", Secrets: map[string]string{"S": secret}})},
		{"relative file target", serviceSpec(env, "b", state.Blue, 0, state.Spec{Image: appRef, Files: []state.FileContent{{Target: "etc/x", Content: []byte("x")}}})},
		{"file over a file's parent", serviceSpec(env, "c", state.Blue, 0, state.Spec{Image: appRef, Files: []state.FileContent{{Target: "/app/server/config.yaml", Content: []byte("x")}}})},
		{"port in use", serviceSpec(env, "d", state.Blue, busy, state.Spec{Image: appRef, ContainerPort: 8080, Secrets: map[string]string{"S": secret}})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := rt.Start(ctx, tc.cs)
			if err == nil {
				t.Fatalf("start succeeded")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tc.cs.Name) {
				t.Errorf("error %q does not name the container", err)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error contains a secret value")
			}
			if _, err := rt.Inspect(ctx, tc.cs.Name); !errors.Is(err, reconciler.ErrNotFound) {
				t.Errorf("container left behind: %v", err)
			}
		})
	}
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", state.LabelEnv+"="+env))})
	if err != nil || len(list) != 0 {
		t.Errorf("containers left: %d %v", len(list), err)
	}
}

func TestRunJob(t *testing.T) {
	t.Parallel()
	rt, cli, env := setup(t)
	testenv.AppImage(t, appRef)
	ctx := context.Background()

	for _, want := range []int{0, 3} {
		t.Run(fmt.Sprintf("exit %d", want), func(t *testing.T) {
			cs := reconciler.ContainerSpec{
				Name:   fmt.Sprintf("%s-migrations-%d", env, want),
				Labels: map[string]string{state.LabelEnv: env, state.LabelCommit: "abc"},
				Spec: state.Spec{
					Image:   appRef,
					Command: []string{"migrate"},
					Env:     map[string]string{"MIGRATE_EXIT": strconv.Itoa(want)},
					Files:   []state.FileContent{{Target: "/etc/migrate.sql", Content: []byte("select 1;")}},
				},
			}
			var out syncBuffer
			code, err := rt.RunJob(ctx, cs, &out)
			if err != nil {
				t.Fatalf("run job: %v", err)
			}
			if code != want {
				t.Errorf("exit code %d, want %d", code, want)
			}
			if !strings.Contains(out.String(), "migrating") {
				t.Errorf("output %q lacks the job's line", out.String())
			}
			if _, err := cli.ContainerInspect(ctx, cs.Name); err == nil {
				t.Errorf("job container %s left behind", cs.Name)
			}
		})
	}

	t.Run("leftover of an interrupted run", func(t *testing.T) {
		name := env + "-migrations"
		leftover := createRaw(t, cli, name, map[string]string{state.LabelEnv: env, state.LabelRole: "migrations"}, 0)
		cs := reconciler.ContainerSpec{
			Name:   name,
			Labels: map[string]string{state.LabelEnv: env},
			Spec:   state.Spec{Image: appRef, Command: []string{"migrate"}},
		}
		var out syncBuffer
		if code, err := rt.RunJob(ctx, cs, &out); err != nil || code != 0 {
			t.Fatalf("run job over a leftover: %d %v", code, err)
		}
		if _, err := cli.ContainerInspect(ctx, leftover); err == nil {
			t.Errorf("leftover job container still there")
		}
	})

	t.Run("name held by a service", func(t *testing.T) {
		name := env + "-migrations-held"
		holder := createRaw(t, cli, name, map[string]string{state.LabelEnv: env, state.LabelRole: "service"}, 0)
		cs := reconciler.ContainerSpec{Name: name, Labels: map[string]string{state.LabelEnv: env}, Spec: state.Spec{Image: appRef, Command: []string{"migrate"}}}
		if _, err := rt.RunJob(ctx, cs, io.Discard); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("run job over a service's name: %v, want 'already exists'", err)
		}
		if ci, err := cli.ContainerInspect(ctx, holder); err != nil || !ci.State.Running {
			t.Errorf("the service holding the name was touched: %v", err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		cs := reconciler.ContainerSpec{
			Name:   env + "-migrations-forever",
			Labels: map[string]string{state.LabelEnv: env},
			Spec:   state.Spec{Image: appRef, Command: []string{"worker"}},
		}
		var out syncBuffer
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := rt.RunJob(cctx, cs, &out)
			done <- err
		}()
		// Cancel once the job is visibly running (its output streams).
		eventually(t, 10*time.Second, func() error {
			if !strings.Contains(out.String(), "heartbeat") {
				return errors.New("no heartbeat streamed yet")
			}
			return nil
		})
		cancel()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("cancelled job returned no error")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("cancelled job did not return")
		}
		if _, err := cli.ContainerInspect(ctx, cs.Name); err == nil {
			t.Errorf("cancelled job container left behind")
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestPullUnreachableRegistry(t *testing.T) {
	// Not parallel: it sets DOCKER_CONFIG so that no real credentials are read.
	rt, cli, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ref = "127.0.0.1:1/nope:v1"
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, err := rt.Pull(ctx, ref)
	if err == nil {
		t.Fatal("pull succeeded")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{ref, "check that the image and tag exist", "credentials for 127.0.0.1:1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		t.Errorf("image %s present after a failed pull", ref)
	}
}

func TestConnect(t *testing.T) {
	testenv.Docker(t) // skips without an engine
	cli, err := docker.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	cli.Close()

	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	_, err = docker.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "docker engine not reachable at unix:///nonexistent/docker.sock") {
		t.Errorf("connect to a missing socket: %v", err)
	}
}

// BenchmarkObserve measures the hot path of a no-op apply: one observation
// of an environment with 3 running services.
func BenchmarkObserve(b *testing.B) {
	rt, _, env := setup(b)
	testenv.AppImage(b, appRef)
	ctx := context.Background()
	for _, svc := range []string{"api", "mcp", "worker"} {
		cs := serviceSpec(env, svc, state.Blue, 0, state.Spec{Image: appRef, Command: []string{"worker"}})
		if err := rt.Start(ctx, cs); err != nil {
			b.Fatalf("start %s: %v", svc, err)
		}
	}
	images := []string{appRef, "reconciler-test/absent:nope"}
	b.ResetTimer()
	for b.Loop() {
		snap, err := rt.Observe(ctx, env, images)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Containers) != 3 {
			b.Fatalf("observed %d containers, want 3", len(snap.Containers))
		}
	}
}
