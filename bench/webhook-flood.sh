#!/usr/bin/env bash
# Webhook flood (docs/BENCHMARKS.md, "Webhook flood"): an agent with a
# webhook secret gets N (20) concurrent deliveries of SIZE (24 MB) bytes
# with a bad signature on loopback; its peak RSS (VmHWM from /proc) is
# printed before and after. Nothing is deployed: the repo holds no env file.
#
# Usage: bench/webhook-flood.sh            # N=20 SIZE=25165824
set -euo pipefail
N=${N:-20}
SIZE=${SIZE:-25165824}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/reconciler" ./cmd/reconciler && go build -o "$work/flood" ./bench/webhookflood)
git -C "$work" init -q -b main repo && git -C "$work/repo" -c user.email=b@x -c user.name=b commit -q --allow-empty -m empty
printf 'bench-secret' > "$work/secret"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/reconciler" run --env whflood --repo "$work/repo" --state-dir "$work/state" --listen "127.0.0.1:$port" \
  --webhook-secret-file "$work/secret" --interval 1h --heal-interval 0 --skip-checks --log-level error >"$work/agent.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
hwm() { awk '/VmHWM/ {print $2/1024 " MB"}' "/proc/$pid/status"; }
echo "peak RSS before: $(hwm)"
"$work/flood" -url "http://127.0.0.1:$port/hooks/github" -n "$N" -size "$SIZE"
echo "peak RSS after $N x $SIZE-byte bad-signature deliveries: $(hwm)"
