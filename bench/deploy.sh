#!/usr/bin/env bash
# Deploy overhead: an upgrade v1 → v2 of a three-service env (two HTTP
# services behind nginx, one worker), start to converged, minus the time
# spent waiting on purpose (health checks until healthy, worker settle,
# drain). Median of RUNS upgrades (v1 → v2 → v1 ...). Prints markdown.
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-5}
cleanup() { set +e; stop_nginx; remove_env_containers "$env"; rm -rf "$work"; }
trap cleanup EXIT
images
start_nginx
new_repo
pa=$(freeport); pb=$(freeport)
write_env() {
  cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q $NGX_ARGS
  reload: $NGINX $NGX_ARGS -s reload
services:
  mcp-server:
    image: reconciler-bench/app:$1
    containerPort: 8080
    listen: "127.0.0.1:$pa"
    env: {VERSION: "$1"}
    memory: 64m
    health: {path: /health, interval: 100ms, healthyThreshold: 2, startTimeout: 20s}
    drain: 1s
  rest-api:
    image: reconciler-bench/app:$1
    containerPort: 8080
    listen: "127.0.0.1:$pb"
    env: {VERSION: "$1"}
    memory: 64m
    health: {path: /health, interval: 100ms, healthyThreshold: 2, startTimeout: 20s}
    drain: 1s
  worker:
    image: reconciler-bench/app:$1
    command: ["worker"]
    env: {VERSION: "$1"}
    memory: 32m
    health: {interval: 100ms, healthyThreshold: 2}
YAML
  commit "$1"
}
write_env v1
logged "$work/first-apply.log" R apply --env "$env" --repo "$repo"
totals=(); waits=(); overheads=()
v=v2
for _ in $(seq "$RUNS"); do
  write_env "$v"
  start=$(date +%s%N)
  logged "$work/apply.log" R apply --log-format json --env "$env" --repo "$repo"
  end=$(date +%s%N)
  total=$(( (end - start) / 1000000 ))
  # wait-healthy and settle: their whole "took"; drain: its configured sleep.
  waited=$(python3 - "$work/apply.log" <<'PY'
import json, sys, re
ms = 0.0
def dur(s):
    if isinstance(s, (int, float)):
        return s * 1000  # zap's JSON encoder writes durations in seconds
    m = re.fullmatch(r'([\d.]+)(ms|s|µs|us)', s)
    v, u = float(m.group(1)), m.group(2)
    return v * {'ms': 1, 's': 1000, 'µs': 0.001, 'us': 0.001}[u]
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    msg = r.get('msg', '')
    if msg.startswith(('wait-healthy ', 'settle ')) and 'took' in r:
        ms += dur(r['took'])
    elif msg.startswith('drain ') and 'took' in r:
        # The drain ends once the old color is idle: what it waited.
        ms += dur(r['took'])
print(int(ms))
PY
)
  totals+=("$total"); waits+=("$waited"); overheads+=("$((total - waited))")
  [ "$v" = v2 ] && v=v1 || v=v2
done
echo "### Deploy overhead: three-service upgrade, start to converged (median of $RUNS)"
echo
echo "| total (process start to exit) | waiting on purpose (health, settle, drain) | overhead |"
echo "|---|---|---|"
echo "| $(printf '%s\n' "${totals[@]}" | median) ms | $(printf '%s\n' "${waits[@]}" | median) ms | $(printf '%s\n' "${overheads[@]}" | median) ms (runs: ${overheads[*]}) |"
echo
