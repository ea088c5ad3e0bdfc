package memhost

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/reconciler"
	"github.com/developer-mesh/reconciler/state"
)

func header(env, service, extra string) []byte {
	return []byte("# Managed by reconciler: env=" + env + " service=" + service + ". Do not edit: changes are overwritten.\n" +
		"# reconciler-ports: blue=21000 green=21001" + extra + "\nupstream x {}\n")
}

func desired() *state.Desired {
	return &state.Desired{Env: "p", Nginx: state.Nginx{ConfDir: "/conf"}, NamesDir: "/names/p",
		Services: []state.DesiredService{{Name: "api", Spec: state.Spec{Image: "a:1"}}, {Name: "web", Spec: state.Spec{Image: "w:2"}}}}
}

// observed is a host with every kind of thing Observed reports.
func observed() *state.Observed {
	return &state.Observed{
		Containers: []state.Container{
			{ID: "p-api-green", Name: "p-api-green", Service: "api", Color: "green", State: "running", HostPort: 21001,
				ImageID: "sha256:a", Networks: map[string][]string{"p": {"api-green"}}, Spec: state.Summary{Image: "a:1"}, SpecHash: "h"},
			{ID: "p-web-blue", Name: "p-web-blue", Service: "web", Color: "blue", State: "exited", RestartCount: 2},
		},
		Foreign:       []state.Foreign{{Name: "other", HostPorts: []int{21002}}},
		Sites:         []state.Site{{Service: "api", Path: "/conf/p-api.conf", Content: header("p", "api", ""), Live: "green", BluePort: 21000, GreenPort: 21001}, {Service: "up", Path: "/conf/p-up.conf", Content: header("p", "up", " live=green"), Live: "green", BluePort: 21000, GreenPort: 21001}},
		ImageIDs:      map[string]string{"a:1": "sha256:a", "w:2": ""},
		LastMigration: "m1",
		NameProxies:   []state.NameProxy{{Name: "reconciler-proxy-p-api", Service: "api", Port: 8080, Network: "p", State: "running"}},
		Names:         map[string]state.Color{"api": "green"},
	}
}

// TestSeedObserved: a seeded host observes as what it was seeded with.
func TestSeedObserved(t *testing.T) {
	h := New()
	h.Seed(desired(), observed())
	got, err := h.Observed(context.Background(), desired())
	if err != nil {
		t.Fatal(err)
	}
	if want := observed(); !reflect.DeepEqual(got, want) {
		t.Errorf("observed\n%+v\nwant\n%+v", got, want)
	}
	// Another env sees none of it but the foreign container.
	d := desired()
	d.Env = "q"
	o, err := h.Observed(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	// Env p's containers and name proxy are foreign to q, with their
	// owner, as reconciler/docker reports them: their names may collide.
	if len(o.Containers) != 0 || len(o.Sites) != 0 || len(o.NameProxies) != 0 || len(o.Foreign) != 4 || o.Foreign[3].Owner != "env p, service api" {
		t.Errorf("env q observes %+v", o)
	}
}

// TestFault: an operation that Fault fails, or whose context is done,
// changes nothing and is recorded.
func TestFault(t *testing.T) {
	h := New()
	h.Seed(desired(), observed())
	boom := errors.New("boom")
	h.Fault = func(c Call) error {
		if c.Op == "remove" {
			return boom
		}
		return nil
	}
	if err := h.Runtime().Remove(context.Background(), "p-api-green", time.Second); !errors.Is(err, boom) {
		t.Fatalf("remove = %v, want boom", err)
	}
	if _, ok := h.Container("p-api-green"); !ok {
		t.Error("a failed remove removed the container")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Edge().Switch(ctx, "/conf", "p", "api", "blue"); !errors.Is(err, context.Canceled) {
		t.Fatalf("switch with a done context = %v, want context.Canceled", err)
	}
	if c, _ := h.Live("/conf", "p", "api"); c != "green" {
		t.Errorf("a failed switch moved traffic to %s", c)
	}
	want := []Call{{Op: "remove", Target: "p-api-green"}, {Op: "switch", Target: "p-api", Arg: "blue"}}
	if got := h.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

// TestStart: a started container is read from its labels, needs its image
// and a free name, and is found by a health check on its port.
func TestStart(t *testing.T) {
	ctx := context.Background()
	h := New()
	cs := reconciler.ContainerSpec{Name: "p-web-green", HostPort: 21003, Spec: state.Spec{Image: "w:2", Memory: 1 << 20},
		EnvNetwork: "p", Aliases: []string{"web-green", "web"},
		Labels: map[string]string{state.LabelEnv: "p", state.LabelService: "web", state.LabelColor: "green", state.LabelSpecHash: "h2", state.LabelSpec: `{"image":"w:2"}`}}
	if err := h.Runtime().Start(ctx, cs); err == nil {
		t.Fatal("start without the image succeeded")
	}
	if id, err := h.Runtime().Pull(ctx, "w:2"); err != nil || id != ImageID("w:2") {
		t.Fatalf("pull = %q, %v", id, err)
	}
	if err := h.Runtime().Start(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := h.Runtime().Start(ctx, cs); err == nil {
		t.Error("a second start of the same name succeeded")
	}
	c, err := h.Runtime().Inspect(ctx, "p-web-green")
	if err != nil {
		t.Fatal(err)
	}
	if c.Service != "web" || c.Color != "green" || c.SpecHash != "h2" || c.Spec.Image != "w:2" || c.ImageID != ImageID("w:2") ||
		c.Memory != 1<<20 || !c.Running() || !slices.Equal(c.Networks["p"], []string{"web", "web-green"}) {
		t.Errorf("inspect = %+v", c)
	}
	if err := h.Check(ctx, 21003, "/", time.Second); err != nil {
		t.Errorf("check of a running container's port = %v", err)
	}
	if err := h.Check(ctx, 21004, "/", time.Second); err == nil {
		t.Error("check of a port nobody publishes passed")
	}
	if _, err := h.Runtime().Inspect(ctx, "nope"); !errors.Is(err, reconciler.ErrNotFound) {
		t.Errorf("inspect of a missing container = %v, want ErrNotFound", err)
	}
}
