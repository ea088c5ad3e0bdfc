#!/usr/bin/env bash
# Agent benchmarks, on loopback only (figures go to docs/BENCHMARKS.md, "Agent"):
#
#  1. idle cost: the agent follows a bare repo every 10 s (heal every 1 m) for
#     DURATION seconds with nothing to deploy; RSS is sampled every 5 s from
#     /proc, CPU is utime+stime over the window.
#  2. webhook to converged: ROUNDS times, commit a new version, push, POST a
#     signed webhook and wait until nginx serves it; the health-check wait
#     (from the agent's log) is subtracted.
#
# Usage: bench/agent-idle.sh              # the documented 5-minute run
#        DURATION=60 bench/agent-idle.sh  # shorter
# Everything it made is removed at the end, also on failure or Ctrl-C.
DURATION=${DURATION:-300}
ROUNDS=${ROUNDS:-5}
# The env is bagent<pid>; lib.sh's images (reconciler-bench/app) are not used.
LIB_NAME=bagent
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# A tag of this run only: other benchmarks import their own images, and a
# tag moved under the agent would be drift it repairs.
image=reconciler-bench-agent/app:$env
agent_pid=

cleanup() {
  set +e
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  stop_nginx
  remove_env_containers "$env"
  docker rmi "$image" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
port=$(freeport)
listen=127.0.0.1:$(freeport)

echo "== build the agent and the demo app image (offline)"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/reconciler" ./cmd/reconciler)
mkdir -p "$work/img/app"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/img/app/server" ./demo/app)
tar -C "$work/img" -cf "$work/img.tar" app
docker import --change 'ENTRYPOINT ["/app/server"]' --change 'CMD ["serve"]' --change 'EXPOSE 8080' \
  "$work/img.tar" "$image" >/dev/null

echo "== private nginx on 127.0.0.1:$port"
start_nginx

new_repo
write_env() { # $1 = version
cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q $NGX_ARGS
  reload: $NGINX $NGX_ARGS -s reload
services:
  web:
    image: $image
    containerPort: 8080
    listen: "127.0.0.1:$port"
    env: {VERSION: "$1"}
    memory: 64m
    health: {path: /health, interval: 100ms, healthyThreshold: 2, startTimeout: 20s}
    drain: 1s
YAML
commit "deploy $1"
}
write_env v0
git init -q --bare -b main "$work/remote.git"
git -C "$repo" push -q "$work/remote.git" main

secret=bench-secret-$$
echo "$secret" > "$work/secret"
"$work/reconciler" run --env "$env" --repo "file://$work/remote.git" --state-dir "$work/state" \
  --listen "$listen" --interval 10s --webhook-secret-file "$work/secret" --log-format json \
  2> "$work/agent.log" &
agent_pid=$!

serving() { curl -fsS "http://127.0.0.1:$port/" 2>/dev/null | grep -q "version=$1 "; }
wait_serving() { # $1 version, $2 timeout s
  local end=$(( $(date +%s) + $2 ))
  until serving "$1"; do
    [ "$(date +%s)" -lt "$end" ] || { echo "bench: $1 not served within $2 s"; tail -20 "$work/agent.log"; exit 1; }
    sleep 0.01
  done
}
wait_serving v0 60
curl -fsS "http://$listen/readyz" >/dev/null
# No deploy or repair may happen during the idle window.
idle_lines=$(wc -l < "$work/agent.log")

echo "== idle: ${DURATION}s at --interval 10s (heal every 1m)"
hz=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$agent_pid/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$agent_pid/status"; }
c0=$(cpu); t0=$(date +%s%N); max=0; sum=0; n=0
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
  r=$(rss); sum=$((sum + r)); n=$((n + 1)); [ "$r" -gt "$max" ] && max=$r
  sleep 5
done
c1=$(cpu); t1=$(date +%s%N)
if tail -n +"$((idle_lines + 1))" "$work/agent.log" | grep -qE '"msg":"(deploying|repaired drift)"'; then
  echo "bench: the agent deployed or repaired during the idle window; the figures are not idle:"
  tail -n +"$((idle_lines + 1))" "$work/agent.log"
  exit 1
fi
fetches=$(curl -fsS "http://$listen/metrics" | awk '/^reconciler_git_fetch_duration_seconds_count/ {print $2}')
awk -v c=$((c1 - c0)) -v hz="$hz" -v ns=$((t1 - t0)) -v max="$max" -v sum="$sum" -v n="$n" -v f="$fetches" 'BEGIN {
  printf "idle: RSS max %.1f MB, mean %.1f MB; CPU %.3f%% of one core (%d ticks in %.0f s); %d fetches so far\n",
    max/1024, sum/n/1024, 100*c/hz/(ns/1e9), c, ns/1e9, f }'
# Of the RSS at the end: the heap and stacks (anonymous) and the pages of
# the binary itself (file-backed: code and read-only data touched so far).
awk '/^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {printf "idle RSS at the end: %.1f MB anonymous, %.1f MB file-backed (binary pages)\n", a/1024, f/1024}' "/proc/$agent_pid/status"

echo "== webhook to served: $ROUNDS rounds"
for i in $(seq 1 "$ROUNDS"); do
  v=v$i
  write_env "$v"
  git -C "$repo" push -q "$work/remote.git" main
  body="{\"ref\":\"refs/heads/main\",\"after\":\"$(git -C "$repo" rev-parse HEAD)\"}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}')
  lines=$(wc -l < "$work/agent.log")
  s=$(date +%s%N)
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H "X-GitHub-Event: push" \
    -H "X-Hub-Signature-256: sha256=$sig" --data "$body" "http://$listen/hooks/github")
  [ "$code" = 202 ] || { echo "bench: webhook got $code"; exit 1; }
  wait_serving "$v" 60
  e=$(date +%s%N)
  # The health wait of this deploy, from the agent's own log.
  deadline=$(( $(date +%s) + 60 ))
  until tail -n +"$((lines + 1))" "$work/agent.log" | grep -q '"msg":"deployed"'; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench: no \"deployed\" for $v within 60 s"; tail -20 "$work/agent.log"; exit 1; }
    sleep 0.05
  done
  health=$(tail -n +"$((lines + 1))" "$work/agent.log" | jq -r 'select(.msg|startswith("wait-healthy")) | .took' | tail -1)
  awk -v ms=$(( (e - s) / 1000000 )) -v h="$health" -v v="$v" 'BEGIN {
    printf "%s: webhook to served %d ms, health wait %d ms, minus health %d ms\n", v, ms, h*1000, ms - h*1000 }'
done
echo "== breakdown of the last deploy (agent log)"
tail -n +"$((lines + 1))" "$work/agent.log" | jq -r '"\(.ts) \(.logger) \(.msg) \(.took // "")"'
