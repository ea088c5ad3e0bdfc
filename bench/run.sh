#!/usr/bin/env bash
# make bench: runs every benchmark and prints the markdown figures (paste
# them into docs/BENCHMARKS.md), also saved to bench/results.md.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
source "$dir/lib.sh" >/dev/null
rm -rf "$work"
{
  echo "## Figures"
  echo
  machine
  echo
  "$dir/zerodowntime.sh"
  "$dir/noop.sh"
  "$dir/nameproxy.sh"
  "$dir/deploy.sh"
  "$dir/drain.sh"
  "$dir/discovery.sh"
  "$dir/rollback.sh"
} | tee "$dir/results.md"
