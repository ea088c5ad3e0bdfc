// Command reconciler-aws is reconciler's AWS helper: the one binary that
// links the AWS SDK. reconciler runs it, installed beside itself, for each
// AWS call it needs (package awscloud): one JSON request on stdin, one
// JSON response on stdout, exit 0 when that exchange worked, whatever
// AWS answered. It reads the AWS configuration from the environment it
// inherits and logs nothing; secret values leave it only on stdout.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/developer-mesh/reconciler/reconciler/awscloud/sdk"
)

// version is the release, stamped by the build (-X main.version=...) as
// reconciler's: a request from a reconciler of another release is refused.
var version = "dev"

// usage is printed for any argument: the helper takes none.
const usage = `reconciler-aws is reconciler's AWS helper, started by reconciler for each
AWS call: it reads one JSON request on stdin and writes one JSON response
on stdout. It takes no arguments; install it beside reconciler.
`

func main() {
	if len(os.Args) > 1 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := sdk.Serve(ctx, version, os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "reconciler-aws: %v\n", err)
		os.Exit(1)
	}
}
