package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLeanImports: the proxy links the standard library's HTTP and the
// marker code, none of what makes the reconciler binary large.
func TestLeanImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to list the imports: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/docker/", "github.com/moby/", "github.com/aws/", "github.com/go-git/",
			"github.com/prometheus/", "github.com/spf13/", "go.uber.org/zap", "github.com/developer-mesh/reconciler/reconciler/docker",
			"github.com/developer-mesh/reconciler/templates"} {
			if strings.HasPrefix(d, bad) {
				t.Errorf("cmd/nameproxy depends on %s", d)
			}
		}
		if d == "github.com/developer-mesh/reconciler/reconciler" {
			t.Errorf("cmd/nameproxy depends on the core package")
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServeAndCheck: the command line of the proxy image (with and
// without the leading name-proxy word) serves, --check prints the color
// the proxy reads from its marker, and the proxy ends cleanly when its
// context does (SIGTERM).
func TestServeAndCheck(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "api")
	if err := os.WriteFile(marker, []byte("blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"name-proxy", "--service", "api", "--port", port, "--marker", marker}, &bytes.Buffer{}, &logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var out, errs bytes.Buffer
		err := run(context.Background(), []string{"--check", "--port", port}, &out, &errs)
		if err == nil {
			if got := strings.TrimSpace(out.String()); got != "blue" {
				t.Fatalf("check printed %q, want blue", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("check: %v", err)
		}
		<-tick.C
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve ended with %v", err)
	}
}

// TestUsageErrors: a missing flag or a stray argument is an error that
// says what is needed.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"--service", "api"}, {"--check"}, {"--service", "a", "--port", "1", "--marker", "m", "extra"}} {
		var errs bytes.Buffer
		err := run(context.Background(), args, &bytes.Buffer{}, &errs)
		if err == nil {
			t.Errorf("%q: no error", args)
			continue
		}
		if !strings.Contains(err.Error(), "--") && !strings.Contains(err.Error(), "argument") {
			t.Errorf("%q: %v does not say what is needed", args, err)
		}
	}
}
