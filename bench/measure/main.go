// Command measure runs a command several times and prints the median,
// minimum and maximum wall time in milliseconds and the peak resident set
// size in MiB (the largest of the runs, from wait4's rusage), as
// "median_ms min_ms max_ms peak_rss_mib". The command's output is
// discarded; a run that exits non-zero fails the measurement unless -ok
// lists its exit code.
//
// Several commands separated by ::: are run in turn, one run of each per
// round (A B C A B C ...), and get one line each, in order: on a machine
// whose load changes from second to second, commands compared this way
// see the same load, where blocks of runs one after the other do not.
//
//	measure -n 10 [-ok 0,2] -- reconciler diff --env prod
//	measure -n 10 -- new diff --env prod ::: old diff --env prod
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 10, "runs")
	ok := flag.String("ok", "0", "exit codes that count as success, comma-separated")
	flag.Parse()
	cmds := split(flag.Args())
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: measure [-n RUNS] [-ok CODES] -- COMMAND [ARGS...] [::: COMMAND [ARGS...]]...")
		os.Exit(2)
	}
	okCodes := map[int]bool{}
	for _, c := range strings.Split(*ok, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil {
			fmt.Fprintf(os.Stderr, "measure: -ok %q: %v\n", *ok, err)
			os.Exit(2)
		}
		okCodes[v] = true
	}
	walls := make([][]float64, len(cmds))
	rss := make([]int64, len(cmds))
	for i := 0; i < *n; i++ {
		for c, args := range cmds {
			cmd := exec.Command(args[0], args[1:]...)
			var errb strings.Builder
			cmd.Stderr = &errb
			start := time.Now()
			err := cmd.Run()
			wall := time.Since(start)
			if err != nil && cmd.ProcessState == nil {
				fmt.Fprintf(os.Stderr, "measure: %v\n", err)
				os.Exit(1)
			}
			if code := cmd.ProcessState.ExitCode(); !okCodes[code] {
				fmt.Fprintf(os.Stderr, "measure: %s exited %d:\n%s", strings.Join(args, " "), code, errb.String())
				os.Exit(1)
			}
			walls[c] = append(walls[c], float64(wall.Microseconds())/1000)
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				rss[c] = max(rss[c], ru.Maxrss) // KiB on Linux
			}
		}
	}
	for c := range cmds {
		w := walls[c]
		slices.Sort(w)
		med := w[len(w)/2]
		if len(w)%2 == 0 {
			med = (w[len(w)/2-1] + w[len(w)/2]) / 2
		}
		fmt.Printf("%.1f %.1f %.1f %.1f\n", med, w[0], w[len(w)-1], float64(rss[c])/1024)
	}
}

// split cuts args at each ":::" into commands; empty commands are
// dropped.
func split(args []string) [][]string {
	var out [][]string
	cur := []string{}
	for _, a := range args {
		if a == ":::" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
