package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// TestHosts starts two hosts on one fabric, runs the app in each host's
// engine published on the same 127.0.0.1:18080 inside each host, puts each
// host's nginx on port 80 in front of it, and reaches both from the test at
// their fabric addresses under load, with no failed request. The host's
// loopback stays private. When the fabric is removed, no namespace, link,
// mount, process or directory of it is left.
func TestHosts(t *testing.T) {
	var (
		bridge, shared string
		netns, veths   []string
		dirs           []string
	)
	t.Run("fabric", func(t *testing.T) {
		f := StartFabric(t)
		bridge, shared = "br-rcl"+fmt.Sprint(f.n), f.Shared
		var hosts []*Host
		for _, name := range []string{"h1", "h2"} {
			h := f.StartHost(t, name)
			hosts = append(hosts, h)
			netns, veths, dirs = append(netns, h.netns), append(veths, h.veth), append(dirs, h.Dir)
		}
		for _, h := range hosts {
			runApp(t, h)
		}
		var loads []*Load
		for _, h := range hosts {
			loads = append(loads, StartLoad(t, "http://"+h.Addr+"/", 2, time.Minute))
		}
		for _, h := range hosts {
			waitHost(t, h)
		}
		// The test process does not see a host's loopback.
		if code, _ := hosts[0].Get("http://127.0.0.1:18080/"); code == 200 {
			t.Fatal("the host's 127.0.0.1:18080 answers from the machine's network namespace")
		}
		// Each host sees its own nginx dir at the shared path; outside it
		// is empty.
		for _, h := range hosts {
			out, err := h.Command(context.Background(), "cat", filepath.Join(f.Shared, "nginx.pid")).Output()
			if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(h.nginx.Process.Pid) {
				t.Fatalf("host %s: %s/nginx.pid = %q (%v), want its nginx %d", h.Name, f.Shared, out, err, h.nginx.Process.Pid)
			}
		}
		if ents, _ := os.ReadDir(f.Shared); len(ents) != 0 {
			t.Fatalf("%s is not empty outside the hosts: %v", f.Shared, ents)
		}
		// A host cut off is not reached; back on, it is. Its load ends
		// first, after some requests went through.
		for deadline := time.Now().Add(20 * time.Second); loads[0].OK.Load() < 10; {
			if time.Now().After(deadline) {
				t.Fatalf("load on %s: %d ok after 20s: %v", loads[0].URL, loads[0].OK.Load(), loads[0].Errors())
			}
			time.Sleep(20 * time.Millisecond) // polling the load's count
		}
		loads[0].End()
		hosts[0].Disconnect()
		if code, _ := hosts[0].Get("http://" + hosts[0].Addr + "/"); code != 0 {
			t.Fatalf("a disconnected host answered %d", code)
		}
		hosts[0].Reconnect()
		waitHost(t, hosts[0])
		for i, l := range loads {
			l.End()
			if i > 0 && (l.Failed.Load() != 0 || l.OK.Load() == 0) {
				t.Fatalf("load on %s: %d ok, %d failed: %v", l.URL, l.OK.Load(), l.Failed.Load(), l.Errors())
			}
		}
		if loads[0].Failed.Load() != 0 || loads[0].OK.Load() == 0 {
			t.Fatalf("load on %s before the cut: %d ok, %d failed: %v", loads[0].URL, loads[0].OK.Load(), loads[0].Failed.Load(), loads[0].Errors())
		}
	})
	if bridge == "" {
		return // skipped or failed before the fabric existed
	}
	// The fabric's cleanup has run.
	for _, n := range netns {
		if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), n+" ") || strings.Contains(string(out), n+"\n") {
			t.Errorf("netns %s left behind", n)
		}
	}
	for _, l := range append(veths, bridge) {
		if linkExists(l) {
			t.Errorf("link %s left behind", l)
		}
	}
	for _, d := range append(dirs, filepath.Dir(shared)) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
		if m := mountsUnder(d); len(m) != 0 {
			t.Errorf("mounts left behind: %v", m)
		}
		if pids := pidsMentioning(d); len(pids) != 0 {
			t.Errorf("processes left behind that name %s: %v", d, pids)
		}
	}
}

// runApp runs the app (VERSION=host name) in h's engine on 127.0.0.1:18080
// and puts h's nginx on port 80 in front of it.
func runApp(t *testing.T, h *Host) {
	t.Helper()
	ctx := context.Background()
	h.AppImageVariant(t, "reconciler-test/hosts-app:v1", "")
	port := nat.Port("8080/tcp")
	c, err := h.Docker.ContainerCreate(ctx, &container.Config{Image: "reconciler-test/hosts-app:v1",
		Env: []string{"VERSION=" + h.Name}, ExposedPorts: nat.PortSet{port: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: "18080"}}}}, nil, nil, "app")
	if err != nil {
		t.Fatalf("create the app on %s: %v", h.Name, err)
	}
	if err := h.Docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start the app on %s: %v\n%s", h.Name, err, h.DockerdLog())
	}
	conf := "server {\n    listen 80;\n    location / { proxy_pass http://127.0.0.1:18080; proxy_http_version 1.1; proxy_set_header Connection \"\"; }\n}\n"
	// Written from outside, where the host's ConfDir is under Dir/nginx.
	if err := os.WriteFile(filepath.Join(h.Dir, "nginx", "conf.d", "app.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Command(ctx, "sh", "-c", h.NginxTest+" && "+h.NginxReload).CombinedOutput(); err != nil {
		t.Fatalf("reload nginx on %s: %v: %s", h.Name, err, out)
	}
	waitHost(t, h)
}

// waitHost waits until h's nginx serves the app at h.Addr.
func waitHost(t *testing.T, h *Host) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := h.Get("http://" + h.Addr + "/")
		if code == 200 && strings.Contains(body, "version="+h.Name+" ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/ = %d %q, want version=%s%s", h.Addr, code, body, h.Name, h.NginxErrorLog())
		}
		time.Sleep(20 * time.Millisecond) // polling the host's nginx
	}
}

// pidsMentioning lists the processes whose command line names dir.
func pidsMentioning(dir string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), dir) {
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
