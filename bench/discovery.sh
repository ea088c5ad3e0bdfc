#!/usr/bin/env bash
# Service discovery: calls by name through deploys, and the cost of the
# name proxy's hop. Prints markdown on stdout.
#  - TestDiscoveryUnderLoad: a client container with 8 callers, one call
#    every millisecond each (half on a new connection per call, half
#    kept-alive, no retries), through 6 blue-green deploys;
#  - BenchmarkHop: one GET on a kept-alive connection straight to a
#    backend (the baseline, same run) and through the proxy; median of 5.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(RECONCILER_LOAD=1 go test -count=1 -run '^TestDiscoveryUnderLoad$' -v ./cmd/reconciler 2>&1) || { echo "$out" >&2; exit 1; }
summary=$(grep -o 'fetch summary ok=[0-9]* failed=[0-9]*' <<<"$out" | tail -1)
ok=$(sed 's/.*ok=\([0-9]*\).*/\1/' <<<"$summary")
failed=$(sed 's/.*failed=\([0-9]*\).*/\1/' <<<"$summary")
bench=$(go test -run '^$' -bench '^BenchmarkHop$' -benchtime 2s -count 5 ./reconciler/nameproxy | grep '^BenchmarkHop')
median() { grep "/$1-" <<<"$bench" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
bytes() { grep "/$1-" <<<"$bench" | awk '{print $5}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
d=$(median direct) p=$(median proxy)
echo "### Calls by name through deploys"
echo
echo "| deploys | calls | failed |"
echo "|---|---|---|"
echo "| 6 | $ok | $failed |"
echo
echo "### The name proxy's hop (median of 5, loopback)"
echo
echo "| path | per call | allocated |"
echo "|---|---|---|"
echo "| direct (baseline) | $((d / 1000)) µs | $(bytes direct) B |"
echo "| through the proxy | $((p / 1000)) µs | $(bytes proxy) B |"
echo
echo "The hop adds $(((p - d) / 1000)) µs per call."
