#!/usr/bin/env bash
# Fleet rollout benchmark (figures go to docs/BENCHMARKS.md, "Fleet"):
# a three-host rollout through the fleet (Debian's redis-server started on a
# free loopback port, three real agent loops, each host's deploy 500 ms of
# simulated work) against the same three deploys one after the other without
# a fleet, measured in the same run, at two poll intervals.
#
# Usage: bench/fleet.sh            # 5 rollouts of each
#        COUNT=3 bench/fleet.sh
# The redis-server it starts is stopped at the end (the test's cleanup).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
go test -run '^$' -bench 'Rollout' -benchtime "${COUNT}x" ./reconciler/fleet/ | grep -E '^Benchmark|^ok'
