package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Nginx is a private nginx instance started by StartNginx. It serves the
// *.conf files of ConfDir in its http block, plus a default server on
// 127.0.0.1:Port that answers 404.
type Nginx struct {
	// Dir is the instance's prefix: nginx.conf, the pid file, error.log and
	// the temp paths live there.
	Dir string
	// ConfDir is included by the http block (include ConfDir/*.conf).
	ConfDir string
	// Test and Reload are shell commands for this instance, in the form
	// env files use for nginx.test and nginx.reload.
	Test, Reload string
	// Port is the loopback port of the default server.
	Port int
	// Bin is the nginx binary.
	Bin string
}

// nginxConf is the nginx.conf of a test instance (StartNginx) and of a
// host's nginx (StartHost): a default server on Listen that answers 404,
// plus the *.conf files of ConfDir.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# test instance started by internal/testenv
daemon off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log notice;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path {{.Dir}}/tmp/client_body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;

    server {
        listen {{.Listen}} default_server;
        return 404;
    }

    include {{.ConfDir}}/*.conf;
}
`))

// nginxConfData fills nginxConf.
type nginxConfData struct{ Dir, ConfDir, Listen string }

// StartNginx starts a private nginx in a new temp directory and stops it when
// the test ends. It skips the test when nginx is not installed (fails under
// CI=true). The directories are world-readable so that workers running as an
// unprivileged user (nginx started as root) can test marker files in ConfDir.
func StartNginx(t testing.TB) *Nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr != nil {
			SkipOrFail(t, "nginx not installed (apt-get install -y nginx): %v", err)
			return nil
		}
		bin = "/usr/sbin/nginx"
	}
	dir, err := os.MkdirTemp("", "reconciler-nginx-")
	if err != nil {
		t.Fatalf("nginx temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &Nginx{Dir: dir, ConfDir: filepath.Join(dir, "conf.d"), Bin: bin, Port: FreePort(t)}
	for _, d := range []string{dir, n.ConfDir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("nginx dir: %v", err)
		}
		// MkdirTemp creates 0700 and the umask may strip bits.
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("nginx dir: %v", err)
		}
	}
	var conf bytes.Buffer
	if err := nginxConf.Execute(&conf, nginxConfData{Dir: n.Dir, ConfDir: n.ConfDir, Listen: "127.0.0.1:" + strconv.Itoa(n.Port)}); err != nil {
		t.Fatalf("nginx.conf: %v", err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatalf("nginx.conf: %v", err)
	}
	// -e keeps nginx from opening the distribution's error log before it
	// has read the configuration.
	args := fmt.Sprintf("-e %s/error.log -c %s -p %s/", dir, confPath, dir)
	n.Test = bin + " -t -q " + args
	n.Reload = bin + " " + args + " -s reload"

	cmd := exec.Command(bin, "-e", dir+"/error.log", "-c", confPath, "-p", dir+"/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { n.stop(t, cmd, exited) })

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("nginx exited at start: %v: %s%s", err, out.String(), n.errorLog())
		default:
		}
		if _, err := os.Stat(filepath.Join(dir, "nginx.pid")); err == nil {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(n.Port), time.Second); err == nil {
				c.Close()
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start within 10s: %s%s", out.String(), n.errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop quits nginx gracefully and kills it when it is still running after 5s.
func (n *Nginx) stop(t testing.TB, cmd *exec.Cmd, exited chan error) {
	select {
	case err := <-exited:
		exited <- err
		return
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Logf("quit nginx: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Logf("nginx did not quit within 5s; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
}

// ErrorLog returns the instance's error log, for failure messages.
func (n *Nginx) ErrorLog() string { return n.errorLog() }

func (n *Nginx) errorLog() string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "error.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\nerror.log:\n" + string(b)
}
