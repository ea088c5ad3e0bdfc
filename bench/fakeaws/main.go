// Command fakeaws serves the tests' fake AWS (internal/testenv: SSM,
// Secrets Manager, STS, ...) on 127.0.0.1 to other processes, for the
// benchmarks of an agent whose env reads ssm: secrets. It sets the SSM
// parameters it is given, prints the variables that point the AWS SDK at
// it (test credentials, EC2 metadata off) as KEY=VALUE lines on stdout,
// one per line, then serves until SIGTERM or SIGINT. On SIGUSR1 it prints
// one line to stderr with the requests served so far by operation:
//
//	calls AmazonSSM.GetParameters=12 secretsmanager.GetSecretValue=0 GetCallerIdentity=1
//
// Usage:
//
//	fakeaws -param /bench/a=1 -param /bench/b=2 [-params FILE] > aws.env
//
// FILE holds NAME=VALUE lines (blank lines and lines starting with # are
// skipped). It is the fake of bench/agent-idle.sh (SECRETS=ssm).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/developer-mesh/reconciler/internal/testenv"
)

// counted are the operations the SIGUSR1 line reports, in its order.
var counted = []string{"AmazonSSM.GetParameters", "secretsmanager.GetSecretValue", "GetCallerIdentity"}

// params is the repeatable -param flag: NAME=VALUE pairs in order.
type params [][2]string

func (p *params) String() string { return fmt.Sprint(len(*p), " parameters") }

func (p *params) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want NAME=VALUE", s)
	}
	*p = append(*p, [2]string{name, value})
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeaws:", err)
		os.Exit(1)
	}
}

func run() error {
	var ps params
	flag.Var(&ps, "param", "an SSM parameter NAME=VALUE (repeatable)")
	file := flag.String("params", "", "a file of NAME=VALUE lines, SSM parameters")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *file != "" {
		if err := readParams(*file, &ps); err != nil {
			return err
		}
	}

	// Signals first: one that came before the fake started would otherwise
	// kill the process without the deferred Close.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)

	a := testenv.NewFakeAWS()
	defer a.Close()
	// httptest falls back to [::1] when 127.0.0.1 cannot be bound; the
	// benchmark wants 127.0.0.1 and nothing else.
	if u, err := url.Parse(a.URL); err != nil || u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("the fake listens on %s, not on 127.0.0.1", a.URL)
	}
	for _, p := range ps {
		a.SetParameter(p[0], p[1])
	}
	env := a.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := bufio.NewWriter(os.Stdout)
	for _, k := range keys {
		fmt.Fprintf(out, "%s=%s\n", k, env[k])
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("print the variables: %w", err)
	}

	for {
		select {
		case <-stop:
			return nil
		case <-usr1:
			line := "calls"
			for _, op := range counted {
				line += fmt.Sprintf(" %s=%d", op, a.Calls(op))
			}
			fmt.Fprintln(os.Stderr, line)
		}
	}
}

// readParams appends the NAME=VALUE lines of file to ps.
func readParams(file string, ps *params) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read parameters: %w", err)
	}
	var errs []error
	for i, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := ps.Set(line); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", file, i+1, err))
		}
	}
	return errors.Join(errs...)
}
