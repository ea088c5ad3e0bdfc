#!/usr/bin/env bash
# Drain length: an upgrade v1 → v2 → v1 ... of one HTTP service behind
# nginx with nobody connected, drain 10s. The same run measures the drain
# that ends when the old color is idle (drainIdle: 5s, the default) and the
# fixed timer (drainIdle: 0s). Measured from the apply's own log: the end
# of the switch step to the end of the drain step (old container stopped
# and removed). Median of RUNS upgrades each. Prints markdown.
# Images of its own: another bench running meanwhile re-imports the shared
# tags, which a converge check would see as drift.
IMAGE_REPO=${IMAGE_REPO:-reconciler-bench/drain}
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
cleanup() { set +e; stop_nginx; remove_env_containers "$env"; rm -rf "$work"; }
trap cleanup EXIT
images
start_nginx
mkdir -p "$work/log"
new_repo
port=$(freeport)
write_env() { # version drainIdle
  cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q $NGX_ARGS
  reload: $NGINX $NGX_ARGS -s reload
  logDir: $work/log
services:
  mcp-server:
    image: $IMAGE_REPO:$1
    containerPort: 8080
    listen: "127.0.0.1:$port"
    mcp: true
    env: {VERSION: "$1"}
    memory: 64m
    health: {path: /health, interval: 100ms, healthyThreshold: 2, startTimeout: 20s}
    drain: 10s
    drainIdle: $2
YAML
  commit "$1 drainIdle $2"
}
# switch_to_drained LOG: ms from the end of the switch to the end of the drain.
switch_to_drained() {
  python3 - "$1" <<'PY'
import json, sys
from datetime import datetime
def t(v):
    if isinstance(v, (int, float)):
        return float(v)
    return datetime.fromisoformat(v.replace('Z', '+00:00')).timestamp()
sw = dr = None
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    msg = r.get('msg', '')
    if msg.startswith('switch ') and 'took' in r: sw = t(r['ts'])
    if msg.startswith('drain ') and 'took' in r: dr = t(r['ts'])
print(int((dr - sw) * 1000))
PY
}
write_env v1 5s
logged "$work/first-apply.log" R apply --env "$env" --repo "$repo"
v=v2
declare -A ms
for idle in 5s 0s; do
  for _ in $(seq "$RUNS"); do
    write_env "$v" "$idle"
    logged "$work/apply.log" R apply --log-format json --env "$env" --repo "$repo"
    ms[$idle]+="$(switch_to_drained "$work/apply.log") "
    [ "$v" = v2 ] && v=v1 || v=v2
  done
done
idle=$(printf '%s\n' ${ms[5s]} | median); fixed=$(printf '%s\n' ${ms[0s]} | median)
echo "### Drain of an idle old color: switch to old color removed (median of $RUNS, drain 10s)"
echo
echo "| drain | switch → old color removed | runs (ms) |"
echo "|---|---|---|"
echo "| until idle (drainIdle 5s, the default) | $idle ms | ${ms[5s]}|"
echo "| fixed timer (drainIdle 0s) | $fixed ms | ${ms[0s]}|"
echo
echo "Ratio: the idle drain takes $(python3 -c "print(f'{$idle/$fixed:.3f}')")× the fixed timer's time."
echo
