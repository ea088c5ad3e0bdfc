// Command measure runs a command several times and prints the median,
// minimum and maximum wall time in milliseconds and the peak resident set
// size in MiB (the largest of the runs, from wait4's rusage), as
// "median_ms min_ms max_ms peak_rss_mib". The command's output is
// discarded; a run that exits non-zero fails the measurement unless -ok
// lists its exit code.
//
//	measure -n 10 [-ok 0,2] -- reconciler diff --env prod
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
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: measure [-n RUNS] [-ok CODES] -- COMMAND [ARGS...]")
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
	var walls []float64
	var rss int64
	for i := 0; i < *n; i++ {
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
		walls = append(walls, float64(wall.Microseconds())/1000)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, ru.Maxrss) // KiB on Linux
		}
	}
	slices.Sort(walls)
	med := walls[len(walls)/2]
	if len(walls)%2 == 0 {
		med = (walls[len(walls)/2-1] + walls[len(walls)/2]) / 2
	}
	fmt.Printf("%.1f %.1f %.1f %.1f\n", med, walls[0], walls[len(walls)-1], float64(rss)/1024)
}
