package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// A fabric's hosts live on 10.231.N.0/24: the bridge in the machine's
// network namespace is 10.231.N.1, host K is 10.231.N.(10+K). Inside every
// host, the engine's own bridge is 172.31.250.1/24 (the namespaces keep
// equal addresses apart).
const (
	fabricNet    = "10.231"
	hostBridge   = "br-h"
	hostBridgeIP = "172.31.250.1/24"
	// fabricRoot holds one directory per fabric, /tmp/rclf-N.
	fabricRoot = "/tmp"
)

// Fabric is a private network for one test's hosts: a bridge in the
// machine's network namespace, with Gateway (10.231.N.1, N claimed
// atomically: `ip link add` of a bridge named after N fails when another
// test holds it), and Shared, a path that each host bind-mounts to a
// directory of its own.
type Fabric struct {
	// Gateway is the fabric's address in the machine's network namespace:
	// hosts reach services the test starts there (StartRedis).
	Gateway string
	// Shared is the same path on every host, each host seeing its own
	// directory there (its nginx lives under it). Outside the hosts it is
	// an empty directory.
	Shared string

	t      testing.TB
	n      int
	bridge string
	dir    string

	mu    sync.Mutex
	hosts int
}

// StartFabric claims a fabric and removes it in t.Cleanup (after the hosts,
// which are removed first). It skips the test (fails it under CI=true)
// without root, ip, nsenter, unshare, dockerd or nginx.
func StartFabric(t testing.TB) *Fabric {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "hosts need root (network and mount namespaces, dockerd)")
	}
	for _, bin := range []string{"ip", "nsenter", "unshare", "dockerd", "nginx"} {
		if _, err := exec.LookPath(bin); err != nil {
			SkipOrFail(t, "hosts need %s: %v", bin, err)
		}
	}
	start := 1 + (os.Getpid()+int(time.Now().UnixNano()/1e6))%250
	for i := 0; i < 254; i++ {
		n := 1 + (start+i-1)%254
		bridge := "br-rcl" + strconv.Itoa(n)
		if out, err := exec.Command("ip", "link", "add", bridge, "type", "bridge").CombinedOutput(); err != nil {
			if strings.Contains(string(out), "exists") {
				continue
			}
			t.Fatalf("ip link add %s: %v: %s", bridge, err, out)
		}
		f := &Fabric{t: t, n: n, bridge: bridge, Gateway: fmt.Sprintf("%s.%d.1", fabricNet, n),
			dir: filepath.Join(fabricRoot, "rclf-"+strconv.Itoa(n))}
		f.Shared = filepath.Join(f.dir, "shared")
		t.Cleanup(f.remove)
		// A directory left by a run that was killed holds nothing that
		// runs any more: the bridge of N was free.
		if err := os.RemoveAll(f.dir); err != nil {
			t.Fatalf("fabric dir: %v", err)
		}
		if err := os.MkdirAll(f.Shared, 0o755); err != nil {
			t.Fatalf("fabric dir: %v", err)
		}
		mustIP(t, "addr", "add", f.Gateway+"/24", "dev", bridge)
		mustIP(t, "link", "set", bridge, "up")
		return f
	}
	t.Fatalf("no free fabric: bridges br-rcl1 to br-rcl254 all exist")
	return nil
}

func (f *Fabric) remove() {
	if out, err := exec.Command("ip", "link", "del", f.bridge).CombinedOutput(); err != nil {
		f.t.Errorf("remove fabric: ip link del %s: %v: %s", f.bridge, err, out)
	}
	unmountUnder(f.t, f.dir)
	if err := os.RemoveAll(f.dir); err != nil {
		f.t.Errorf("remove fabric: %v", err)
	}
}

// Host is a machine of a fabric: a network namespace (eth0 on the fabric,
// lo) and a mount namespace with its own dockerd, nginx and state dir.
type Host struct {
	// Name is the name given to StartHost.
	Name string
	// Addr is the host's fabric address, reachable from the test process.
	Addr string
	// DockerHost is the host's engine, "unix:///…/docker.sock".
	DockerHost string
	// Docker is a client of the host's engine, closed when the test ends.
	Docker *client.Client
	// StateDir is the host's own state dir (the same path inside and
	// outside the host).
	StateDir string
	// NginxConfDir, NginxTest, NginxReload and NginxLogDir are the host's
	// nginx as an env file names it: paths under the fabric's Shared, so
	// identical on every host of the fabric.
	NginxConfDir, NginxTest, NginxReload, NginxLogDir string
	// Dir is the host's directory outside (its nginx dir is Dir/nginx,
	// seen inside as the fabric's Shared).
	Dir string

	t       testing.TB
	f       *Fabric
	netns   string
	veth    string
	holder  *exec.Cmd
	dockerd *exec.Cmd
	nginx   *exec.Cmd

	dockerdExited, nginxExited <-chan struct{}

	imgMu  sync.Mutex
	images map[string]string
}

// StartHost starts a host on the fabric: its namespaces, dockerd (its own
// bridge, no iptables, the vfs storage driver) and nginx (a default server
// on Addr:81; env files add their servers through
// NginxConfDir). Everything is removed in t.Cleanup.
func (f *Fabric) StartHost(t testing.TB, name string) *Host {
	t.Helper()
	f.mu.Lock()
	f.hosts++
	k := f.hosts
	f.mu.Unlock()
	if k > 200 {
		t.Fatalf("too many hosts on one fabric")
	}
	h := &Host{Name: name, t: t, f: f, images: map[string]string{},
		Addr:  fmt.Sprintf("%s.%d.%d", fabricNet, f.n, 10+k),
		netns: fmt.Sprintf("rcl%d-%d", f.n, k),
		veth:  fmt.Sprintf("v-rcl%d-%d", f.n, k),
		Dir:   filepath.Join(f.dir, "h"+strconv.Itoa(k)),
	}
	h.StateDir = filepath.Join(h.Dir, "state")
	ngx := filepath.Join(h.Dir, "nginx")
	for _, d := range []string{h.Dir, h.StateDir, ngx, filepath.Join(ngx, "conf.d"), filepath.Join(ngx, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("host dir: %v", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("host dir: %v", err)
		}
	}
	t.Cleanup(h.remove)

	// Network: the netns, a veth to the fabric, the engine's bridge.
	mustIP(t, "netns", "add", h.netns)
	mustIP(t, "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
	mustIP(t, "link", "set", h.veth, "master", f.bridge, "up")
	mustIP(t, "-n", h.netns, "addr", "add", h.Addr+"/24", "dev", "eth0")
	mustIP(t, "-n", h.netns, "link", "set", "eth0", "up")
	mustIP(t, "-n", h.netns, "link", "set", "lo", "up")
	mustIP(t, "-n", h.netns, "link", "add", hostBridge, "type", "bridge")
	mustIP(t, "-n", h.netns, "addr", "add", hostBridgeIP, "dev", hostBridge)
	mustIP(t, "-n", h.netns, "link", "set", hostBridge, "up")

	// The holder owns the mount namespace. Not `ip netns exec`: it
	// remounts /sys, which hides the cgroup mounts dockerd needs.
	h.holder = exec.Command("nsenter", "--net=/run/netns/"+h.netns, "unshare", "--mount", "--propagation", "slave", "sleep", "infinity")
	if err := h.holder.Start(); err != nil {
		t.Fatalf("start the host's namespace holder: %v", err)
	}
	h.waitMountNS()
	if out, err := h.Command(context.Background(), "mount", "--bind", ngx, f.Shared).CombinedOutput(); err != nil {
		t.Fatalf("bind %s to %s in host %s: %v: %s", ngx, f.Shared, name, err, out)
	}

	h.startDockerd()
	h.startNginx()
	return h
}

// waitMountNS waits until the holder runs in its own mount namespace
// (unshare has run), so that what the host mounts stays inside.
func (h *Host) waitMountNS() {
	h.t.Helper()
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		h.t.Fatalf("mount namespace: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.holder.Process.Pid))
		if err == nil && ns != self {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", h.holder.Process.Pid))
			if strings.TrimSpace(string(comm)) == "sleep" {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("host %s: the holder has no mount namespace of its own after 10s", h.Name)
		}
		time.Sleep(10 * time.Millisecond) // polling the holder's namespace
	}
}

func (h *Host) startDockerd() {
	h.t.Helper()
	sock := filepath.Join(h.Dir, "docker.sock")
	h.DockerHost = "unix://" + sock
	empty := filepath.Join(h.Dir, "empty.json")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(h.Dir, "dockerd.log"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer logf.Close()
	// Never --bridge none: it deletes the machine engine's docker0.
	h.dockerd = h.Command(context.Background(), "dockerd",
		"--data-root", filepath.Join(h.Dir, "data"), "--exec-root", filepath.Join(h.Dir, "exec"),
		"-H", h.DockerHost, "--pidfile", filepath.Join(h.Dir, "docker.pid"), "--config-file", empty,
		"--iptables=false", "--ip-masq=false", "--bridge", hostBridge, "--storage-driver", "vfs",
		"--shutdown-timeout", "3", "--log-level", "warn")
	h.dockerd.Stdout, h.dockerd.Stderr = logf, logf
	if err := h.dockerd.Start(); err != nil {
		h.t.Fatalf("start dockerd of host %s: %v", h.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = h.dockerd.Wait(); close(exited) }()
	h.dockerdExited = exited

	cli, err := client.NewClientWithOpts(client.WithHost(h.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		h.t.Fatalf("docker client of host %s: %v", h.Name, err)
	}
	h.Docker = cli
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			h.t.Fatalf("dockerd of host %s exited at start:\n%s", h.Name, h.readFile("dockerd.log"))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("dockerd of host %s does not answer after 60s: %v\n%s", h.Name, err, h.readFile("dockerd.log"))
		}
		time.Sleep(50 * time.Millisecond) // polling the engine
	}
}

func (h *Host) startNginx() {
	h.t.Helper()
	shared := h.f.Shared
	conf := nginxConfData{Dir: shared, ConfDir: filepath.Join(shared, "conf.d"), Listen: h.Addr + ":81"}
	var b bytes.Buffer
	if err := nginxConf.Execute(&b, conf); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Dir, "nginx", "nginx.conf"), b.Bytes(), 0o644); err != nil {
		h.t.Fatal(err)
	}
	bin, err := exec.LookPath("nginx")
	if err != nil {
		h.t.Fatal(err)
	}
	args := fmt.Sprintf("-e %s/error.log -c %s/nginx.conf -p %s/", shared, shared, shared)
	h.NginxConfDir = conf.ConfDir
	h.NginxLogDir = shared
	h.NginxTest = bin + " -t -q " + args
	h.NginxReload = bin + " " + args + " -s reload"

	h.nginx = h.Command(context.Background(), bin, "-e", shared+"/error.log", "-c", shared+"/nginx.conf", "-p", shared+"/")
	var out SyncBuffer
	h.nginx.Stdout, h.nginx.Stderr = &out, &out
	if err := h.nginx.Start(); err != nil {
		h.t.Fatalf("start nginx of host %s: %v", h.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = h.nginx.Wait(); close(exited) }()
	h.nginxExited = exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			h.t.Fatalf("nginx of host %s exited at start: %s%s", h.Name, out.String(), h.readFile("nginx/error.log"))
		default:
		}
		if _, err := os.Stat(filepath.Join(h.Dir, "nginx", "nginx.pid")); err == nil {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "81"), time.Second); err == nil {
				c.Close()
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("nginx of host %s did not start within 10s: %s%s", h.Name, out.String(), h.readFile("nginx/error.log"))
		}
		time.Sleep(20 * time.Millisecond) // polling nginx's pid file and port
	}
}

// Command is name with args inside the host's network and mount
// namespaces, with DOCKER_HOST set to the host's engine. The process is
// the command itself (nsenter execs it), so signals reach it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	pid := strconv.Itoa(h.holder.Process.Pid)
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", pid, "-m", "-n", "--", name}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+h.DockerHost)
	return cmd
}

// AppImageVariant is testenv.AppImageVariant in the host's engine: the
// test app imported as ref, with /variant holding variant (none when "").
// The same ref may name different images on different hosts.
func (h *Host) AppImageVariant(t testing.TB, ref, variant string) string {
	t.Helper()
	bin, err := buildBinary("./demo/app")
	if err != nil {
		t.Fatalf("build the app: %v", err)
	}
	key := ref + "\x00" + variant
	h.imgMu.Lock()
	defer h.imgMu.Unlock()
	if id, ok := h.images[key]; ok {
		return id
	}
	id, err := importApp(h.Docker, bin, ref, variant)
	if err != nil {
		t.Fatalf("import the app as %s into host %s: %v", ref, h.Name, err)
	}
	h.images[key] = id
	return id
}

// Get fetches url (from the test process) and returns the status and the
// body; status 0 and the error text when the request fails.
func (h *Host) Get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Disconnect cuts the host off the fabric (its veth down): the test and
// the other hosts no longer reach it, nor it them. Reconnect undoes it.
func (h *Host) Disconnect() { mustIP(h.t, "link", "set", h.veth, "down") }

// Reconnect puts a host cut off by Disconnect back on the fabric.
func (h *Host) Reconnect() { mustIP(h.t, "link", "set", h.veth, "up") }

// NginxErrorLog returns the host's nginx error log, for failure messages.
func (h *Host) NginxErrorLog() string { return h.readFile("nginx/error.log") }

// DockerdLog returns the log of the host's dockerd, for failure messages.
func (h *Host) DockerdLog() string { return h.readFile("dockerd.log") }

func (h *Host) readFile(rel string) string {
	b, _ := os.ReadFile(filepath.Join(h.Dir, rel))
	return string(b)
}

// remove stops nginx and dockerd (which stops its containers), ends the
// holder, deletes the namespace and the veth, unmounts and removes Dir.
func (h *Host) remove() {
	t := h.t
	if h.nginx != nil && h.nginx.Process != nil {
		_ = h.nginx.Process.Signal(syscall.SIGQUIT)
		waitOrKill(t, "nginx of "+h.Name, h.nginx, h.nginxExited, 10*time.Second)
	}
	if h.Docker != nil {
		h.Docker.Close()
	}
	if h.dockerd != nil && h.dockerd.Process != nil {
		_ = h.dockerd.Process.Signal(syscall.SIGTERM)
		waitOrKill(t, "dockerd of "+h.Name, h.dockerd, h.dockerdExited, 60*time.Second)
	}
	if h.holder != nil && h.holder.Process != nil {
		_ = h.holder.Process.Kill()
		_ = h.holder.Wait()
	}
	// Whatever else still runs in the host (a process a test started with
	// Command and left) would keep the namespace and its mounts alive.
	for _, pid := range pidsIn(h.netns) {
		t.Errorf("host %s: process %d still runs in the host at cleanup; killing it", h.Name, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if _, err := os.Stat("/run/netns/" + h.netns); err == nil {
		if out, err := exec.Command("ip", "netns", "del", h.netns).CombinedOutput(); err != nil {
			t.Errorf("host %s: ip netns del: %v: %s", h.Name, err, out)
		}
	}
	// The veth goes with the namespace; delete it in case it did not.
	if linkExists(h.veth) {
		_ = exec.Command("ip", "link", "del", h.veth).Run()
	}
	unmountUnder(t, h.Dir)
	if err := os.RemoveAll(h.Dir); err != nil {
		t.Errorf("host %s: remove %s: %v", h.Name, h.Dir, err)
	}
}

// waitOrKill waits up to d for a process started by the harness, then kills it.
func waitOrKill(t testing.TB, what string, cmd *exec.Cmd, exited <-chan struct{}, d time.Duration) {
	select {
	case <-exited:
	case <-time.After(d):
		t.Logf("%s did not stop within %s; killing it", what, d)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// pidsIn lists the processes whose network namespace is the named one.
func pidsIn(netns string) []int {
	var want syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+netns, &want); err != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			pids = append(pids, pid)
		}
	}
	return pids
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", name).Run() == nil
}

// unmountUnder lazily unmounts every mount of this mount namespace under
// dir, deepest first.
func unmountUnder(t testing.TB, dir string) {
	for _, m := range mountsUnder(dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			t.Errorf("umount %s: %v", m, err)
		}
	}
}

// mountsUnder lists the mount points of this mount namespace at or under
// dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mustIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers and a reader
// (a child process's output that a test reads while it runs).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePortOn returns a TCP port on ip that was free a moment ago.
func freePortOn(t testing.TB, ip string) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("free port on %s: %v", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
