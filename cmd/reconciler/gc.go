package main

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// annotOneShot marks a command that reads, plans and exits (diff, apply,
// status, validate): its process runs with the collector tuned by
// oneShotGC. Every other command keeps Go's defaults, which suit the
// steady heap of the long-running ones (run, name-proxy).
const annotOneShot = "reconciler.one-shot"

// oneShot marks cmd as a one-shot command (annotOneShot) and returns it.
func oneShot(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annotOneShot] = "true"
	return cmd
}

// Collector settings of a one-shot command. Go starts collecting at a
// 4 MB heap, a goal meant for servers; a no-op diff or apply of 30
// services allocates about 10 MB in all (parsing the env file, decoding
// the engine's answers) and so ran three collections, about 14 % of the
// process's CPU time (perf on bench/noop.sh's no-op; peak RSS was the
// same with the collector off, as the heap stays far below the binary's
// own pages). oneShotGCPercent lets the heap grow to 5× what is live
// before a collection, so a no-op runs none, and oneShotMemoryLimit
// bounds what a long deploy may hold (the Go runtime's own memory, beside
// the binary's pages) before the collector works harder.
const (
	oneShotGCPercent   = 400
	oneShotMemoryLimit = 32 << 20
)

// oneShotGC applies the one-shot collector settings unless GOGC or
// GOMEMLIMIT is set, which always wins.
func oneShotGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(oneShotGCPercent)
	debug.SetMemoryLimit(oneShotMemoryLimit)
}
