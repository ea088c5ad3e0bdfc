#!/usr/bin/env bash
# Fleet rollout benchmark (figures go to docs/BENCHMARKS.md, "Fleet rollout"):
# on three real hosts on this machine (internal/testenv: each a network and
# mount namespace with its own dockerd, nginx and state dir), a three-host
# rollout through the fleet (the real agents, Debian's redis-server on the
# hosts' private network) against three single-host deploys of the same
# change (one `reconciler apply` per host, one after the other), measured in
# the same run. Needs root, dockerd, nginx, redis-server.
#
# Usage: bench/fleet.sh            # 5 rollouts of each
#        COUNT=3 bench/fleet.sh
# Everything it starts (hosts, engines, redis-server) is removed at the end
# (the benchmark's cleanup).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench 'Rollout' -benchtime "${COUNT}x" ./internal/fleethosts/ | grep -E '^Benchmark|^ok|FAIL'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
