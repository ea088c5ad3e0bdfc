// Command nameproxy is what runs inside a service's name proxy container
// (reconciler-proxy-<env>-<service>): it holds the service's name on the
// environment's network and forwards each request to the live color (see
// package nameproxy). Apply creates the container; nobody runs it by hand.
//
// It is a binary of its own, and not `reconciler name-proxy`, so that each
// proxy carries only what forwarding needs: the standard library's HTTP
// server and reverse proxy, not the Docker client, the AWS SDK or git.
//
//	nameproxy [name-proxy] --service NAME --port N --marker PATH
//	nameproxy [name-proxy] --check --port N
//
// The optional first word name-proxy keeps the command line of proxies
// built from the reconciler binary itself (the entrypoint
// `/reconciler name-proxy`) and reconciler.NameCheckCommand valid for
// both images.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/developer-mesh/reconciler/reconciler/nameproxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nameproxy:", err)
		os.Exit(1)
	}
}

// grace is how long requests in flight may take to finish after SIGTERM
// (docker stop waits 10 s by default before SIGKILL).
const grace = 30 * time.Second

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "name-proxy" {
		args = args[1:]
	}
	var p nameproxy.Proxy
	var check bool
	fs := flag.NewFlagSet("nameproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&p.Service, "service", "", "the service whose name this proxy holds")
	fs.IntVar(&p.Port, "port", 0, "port to listen on and to forward to")
	fs.StringVar(&p.Marker, "marker", "", "file holding the live color")
	fs.BoolVar(&check, "check", false, "ask the proxy on --port which color it forwards to, print it and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if check {
		if p.Port <= 0 {
			return errors.New("--check needs --port")
		}
		return nameproxy.Check(ctx, stdout, p.Port)
	}
	if p.Service == "" || p.Port <= 0 || p.Marker == "" {
		return errors.New("--service, --port and --marker are required")
	}
	p.Log = log.New(stderr, "name-proxy "+p.Service+": ", log.LstdFlags)
	p.Log.Printf("forwarding :%d to %s-<color>:%d, color from %s", p.Port, p.Service, p.Port, p.Marker)
	err := p.Serve(ctx, ":"+strconv.Itoa(p.Port), grace)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
