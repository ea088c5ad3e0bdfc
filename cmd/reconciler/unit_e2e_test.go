package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// The agent's systemd unit and the settings file it reads, as shipped.
const (
	shippedUnit    = "../../deploy/reconciler@.service"
	shippedEnvFile = "../../deploy/reconciler.env"
)

// systemdPath is the PATH systemd gives a service that sets none.
const systemdPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// unitFile is the [Service] section of a unit: each setting's values in
// order, continuation lines joined. Comment lines are dropped.
type unitFile map[string][]string

func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	var cont string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\")
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit: not a setting: %q", line)
		}
		if section == "[Service]" {
			u[k] = append(u[k], v)
		}
	}
	return u
}

// readEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile= does
// (the shipped file uses no quotes).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("EnvironmentFile: %v", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		out[k] = v
	}
	return out
}

// unitHost is a fake root for a unit: the paths the unit names under /etc
// and /var/lib live in temp dirs.
type unitHost struct {
	etc, state, creds string
}

func (h unitHost) path(p string) string {
	p = strings.ReplaceAll(p, "/etc/reconciler", h.etc)
	return strings.ReplaceAll(p, "/var/lib/reconciler", h.state)
}

var unitVar = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// unitCommand is the agent process as systemd starts the unit's instance
// env: ExecStart with %i and the variables substituted ("${X}" one word,
// "$X" split on white space), the environment made of Environment=,
// EnvironmentFile= and $CREDENTIALS_DIRECTORY when a credential is loaded,
// and nothing of the test's own environment except how to reach the Docker
// engine: no $HOME, no $DOCKER_CONFIG. The binary is this test binary,
// which runs as reconciler with childEnv set.
func unitCommand(t *testing.T, unit, env string, h unitHost) *exec.Cmd {
	t.Helper()
	u := parseUnit(t, strings.ReplaceAll(unit, "%i", env))
	vars := map[string]string{"PATH": systemdPath}
	for _, e := range u["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = h.path(v)
	}
	for _, f := range u["EnvironmentFile"] {
		for k, v := range readEnvFile(t, h.path(f)) {
			vars[k] = h.path(v)
		}
	}
	if creds := u["LoadCredential"]; len(creds) > 0 {
		// systemd refuses to start the unit when a source is missing.
		for _, c := range creds {
			name, src, _ := strings.Cut(c, ":")
			b, err := os.ReadFile(h.path(src))
			if err != nil {
				t.Fatalf("LoadCredential=%s: systemd would not start the unit: %v", c, err)
			}
			if err := os.WriteFile(filepath.Join(h.creds, name), b, 0o400); err != nil {
				t.Fatal(err)
			}
		}
		vars[credentialsDirEnv] = h.creds
	}
	if len(u["ExecStart"]) != 1 {
		t.Fatalf("ExecStart: want one, got %q", u["ExecStart"])
	}
	var argv []string
	for _, word := range strings.Fields(u["ExecStart"][0]) {
		if strings.Contains(word, "%") {
			t.Fatalf("ExecStart: specifier this test does not know: %q", word)
		}
		m := unitVar.FindStringSubmatch(word)
		switch {
		case m == nil:
			argv = append(argv, h.path(word))
		case m[0] != word:
			t.Fatalf("ExecStart: a variable inside a word: %q", word)
		case m[1] != "":
			argv = append(argv, vars[m[1]])
		default:
			argv = append(argv, strings.Fields(vars[m[2]])...)
		}
	}
	if argv[0] != "/usr/local/bin/reconciler" {
		t.Fatalf("ExecStart runs %s, want /usr/local/bin/reconciler", argv[0])
	}
	cmd := exec.Command(os.Args[0], argv[1:]...)
	cmd.Env = []string{childEnv + "=1"}
	if v := os.Getenv("DOCKER_HOST"); v != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+v)
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// installUnitHost lays out /etc/reconciler for env as docs/operations.md
// says: the shipped settings file with repo, ref and listen address edited
// (the ref of a dev instance, main, which the test's repository has), and
// the two secret files unless noSecrets.
func installUnitHost(t *testing.T, env, repoURL, listen string, noSecrets bool) unitHost {
	t.Helper()
	root := t.TempDir()
	h := unitHost{etc: filepath.Join(root, "etc"), state: filepath.Join(root, "state"), creds: filepath.Join(root, "creds")}
	for _, d := range []string{filepath.Join(h.etc, env), filepath.Join(h.etc, "docker"), h.state, h.creds} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(shippedEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	s := replaceLine(string(b), "RECONCILER_REPO=", "RECONCILER_REPO="+repoURL)
	s = replaceLine(s, "RECONCILER_REF=", "RECONCILER_REF=main")
	s = replaceLine(s, "RECONCILER_INTERVAL=", "RECONCILER_INTERVAL=1s")
	s = replaceLine(s, "RECONCILER_LISTEN=", "RECONCILER_LISTEN="+listen)
	if err := os.WriteFile(filepath.Join(h.etc, env, "reconciler.env"), []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if !noSecrets {
		for _, f := range []string{"git-token", "webhook-secret"} {
			if err := os.WriteFile(filepath.Join(h.etc, env, f), []byte("s3cret-"+f+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

// startUnit starts cmd and returns its address's base URL; it is killed
// when the test ends, and its output logged when the test failed.
func startUnit(t *testing.T, cmd *exec.Cmd, listen string) *testenv.SyncBuffer {
	t.Helper()
	out := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the agent as the unit does: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", out.String())
		}
	})
	waitFor(t, "the agent's /healthz", 20*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the agent exited at start (%v):\n%s", err, out.String())
		default:
		}
		resp, err := http.Get("http://" + listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return out
}

// TestUnitPullsPrivateImages: the agent started exactly as
// deploy/reconciler@.service starts it (its environment and nothing else:
// no $HOME) pulls a private image with the credentials that the documented
// `docker login` line writes to /etc/reconciler/docker. Without the unit's
// DOCKER_CONFIG (the unit before issue 21) the same pull goes out
// anonymous and fails. Not parallel: it builds and pushes images.
func TestUnitPullsPrivateImages(t *testing.T) {
	w := newWorld(t)
	docker, err := exec.LookPath("docker")
	if err != nil {
		testenv.SkipOrFail(t, "the docker CLI is needed for docker login: %v", err)
	}
	reg := testenv.StartRegistry(t, "deployer", "registry-pass")
	v1, _ := w.ownImages()
	reg.Push(t, w.cli, v1, w.env+"/app:v1")
	ref := reg.Addr + "/" + w.env + "/app:v1"
	ctx := context.Background()
	if _, err := w.cli.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		testenv.RemoveEnvContainers(t, w.cli, w.env)
		_, _ = w.cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true})
	})
	commit := w.commit(spec{image: ref, version: "v1", config: "a: 1\n"}, "private image")
	unit, err := os.ReadFile(shippedUnit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nEnvironment=DOCKER_CONFIG=/etc/reconciler/docker\n") {
		t.Fatalf("%s does not set DOCKER_CONFIG=/etc/reconciler/docker", shippedUnit)
	}

	// The unit as it was: no DOCKER_CONFIG, so no credentials.
	t.Run("without DOCKER_CONFIG", func(t *testing.T) {
		listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		h := installUnitHost(t, w.env, "file://"+w.repo.Dir, listen, false)
		old := strings.ReplaceAll(string(unit), "\nEnvironment=DOCKER_CONFIG=/etc/reconciler/docker\n", "\n")
		startUnit(t, unitCommand(t, old, w.env, h), listen)
		waitFor(t, "the commit to fail", 30*time.Second, func() bool { return agentStatus(t, listen).FailedCommit == commit })
		if e := agentStatus(t, listen).LastError; !strings.Contains(e, "no basic auth credentials") && !strings.Contains(strings.ToLower(e), "unauthorized") {
			t.Fatalf("want an anonymous pull refused, got %q", e)
		}
	})

	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	h := installUnitHost(t, w.env, "file://"+w.repo.Dir, listen, false)
	// The line docs/operations.md gives, with this registry.
	login := exec.Command(docker, "login", reg.Addr, "--username", "deployer", "--password-stdin")
	login.Env = append(os.Environ(), "DOCKER_CONFIG="+h.path("/etc/reconciler/docker"))
	login.Stdin = strings.NewReader("registry-pass\n")
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	startUnit(t, unitCommand(t, string(unit), w.env, h), listen)
	waitFor(t, "the private image deployed", 60*time.Second, func() bool {
		s := agentStatus(t, listen)
		if s.FailedCommit == commit {
			t.Fatalf("the agent failed the commit: %s", s.LastError)
		}
		return s.AppliedCommit == commit
	})
	w.wantServing("v1")
}

// TestUnitWithoutOptionalCredentials: with the unit's LoadCredential=
// lines commented out, as the unit says to do for a public repo and no
// webhook, the agent starts (before issue 21 it exited: "read secret file:
// no such file") and runs without a webhook; with both lines, the webhook
// is on.
func TestUnitWithoutOptionalCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	commit := w.commit(spec{version: "v1", config: "a: 1\n"}, "v1")
	unit, err := os.ReadFile(shippedUnit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.RemoveEnvContainers(t, w.cli, w.env) })
	hook := func(listen string) int {
		resp, err := http.Post("http://"+listen+"/hooks/github", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("POST /hooks/github: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	h := installUnitHost(t, w.env, "file://"+w.repo.Dir, listen, true)
	commented := regexp.MustCompile(`(?m)^LoadCredential=`).ReplaceAllString(string(unit), "#LoadCredential=")
	if commented == string(unit) {
		t.Fatalf("%s has no LoadCredential= line", shippedUnit)
	}
	startUnit(t, unitCommand(t, commented, w.env, h), listen)
	waitFor(t, "v1 applied", 30*time.Second, func() bool { return agentStatus(t, listen).AppliedCommit == commit })
	if code := hook(listen); code != http.StatusNotFound {
		t.Fatalf("webhook without a secret: %d, want 404", code)
	}

	// With both credentials the webhook is on (an unsigned request: 401).
	// Another env name, since one agent per env runs on a host; its env
	// file does not exist, which fails its deploys, not its start.
	listen2 := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	h2 := installUnitHost(t, w.env+"b", "file://"+w.repo.Dir, listen2, false)
	startUnit(t, unitCommand(t, string(unit), w.env+"b", h2), listen2)
	if code := hook(listen2); code != http.StatusUnauthorized {
		t.Fatalf("webhook with a secret, unsigned: %d, want 401", code)
	}
}
