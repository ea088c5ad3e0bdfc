#!/usr/bin/env bash
# Agent benchmarks, on loopback only (figures go to docs/BENCHMARKS.md, "Agent"):
#
#  1. idle cost: the agent follows a bare repo every 10 s (heal every 1 m) for
#     DURATION seconds with nothing to deploy; RSS is sampled every 5 s from
#     /proc, CPU is utime+stime+cutime+cstime over the window: the agent's
#     own and that of the children it waited for (with SECRETS=ssm, the
#     reconciler-aws processes it started).
#  2. webhook to converged: ROUNDS times, commit a new version, push, POST a
#     signed webhook and wait until nginx serves it; the health-check wait
#     (from the agent's log) is subtracted.
#
# Usage: bench/agent-idle.sh              # the documented 5-minute run
#        DURATION=60 bench/agent-idle.sh  # shorter
#        AGENT_BIN=/path/to/reconciler bench/agent-idle.sh  # that binary, not a build of the tree
#        SECRETS=ssm bench/agent-idle.sh  # the service has three ssm: secrets
#
# SECRETS=ssm (default none) starts bench/fakeaws, a fake SSM on 127.0.0.1
# holding three parameters, points the agent's AWS variables at it and gives
# the service three ssm: secret references. The agent resolves them, all in
# one reconciler-aws process and one SSM request, at each deploy and each
# drift check (every 1 m); a sync that finds the applied commit resolves
# nothing. The output adds how many SSM requests (one helper process each)
# came in the window. The helper is the one beside AGENT_BIN, else
# reconciler-aws in $PATH, else a build of the tree (without AGENT_BIN,
# always a build of the tree); the agent finds it beside its copy in the
# work dir, or in $PATH. The helper's RSS is not in the RSS figures (a
# separate process that exits after each call).
# Everything it made is removed at the end, also on failure or Ctrl-C.
DURATION=${DURATION:-300}
ROUNDS=${ROUNDS:-5}
SECRETS=${SECRETS:-none}
case $SECRETS in
  none|ssm) ;;
  *) echo "bench: SECRETS=$SECRETS: want none or ssm" >&2; exit 2 ;;
esac
# The env is bagent<pid>; lib.sh's images (reconciler-bench/app) are not used.
LIB_NAME=bagent
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# A tag of this run only: other benchmarks import their own images, and a
# tag moved under the agent would be drift it repairs.
image=reconciler-bench-agent/app:$env
agent_pid=
fake_pid=

cleanup() {
  set +e
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
  stop_nginx
  remove_env_containers "$env"
  docker rmi "$image" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
port=$(freeport)
listen=127.0.0.1:$(freeport)

echo "== build the agent and the demo app image (offline)"
if [ -n "${AGENT_BIN:-}" ]; then
  cp "$AGENT_BIN" "$work/reconciler" # an older build, for a before/after
else
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/reconciler" ./cmd/reconciler)
fi
# The agent looks for its helper beside its executable (the copy in $work),
# then in $PATH.
build_helper() {
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/reconciler-aws" ./cmd/reconciler-aws)
}
if [ "$SECRETS" = ssm ]; then
  if [ -z "${AGENT_BIN:-}" ]; then
    build_helper
  elif [ -x "$(dirname "$AGENT_BIN")/reconciler-aws" ]; then
    cp "$(dirname "$AGENT_BIN")/reconciler-aws" "$work/reconciler-aws"
  elif command -v reconciler-aws >/dev/null; then
    echo "bench: the helper is $(command -v reconciler-aws) (\$PATH)"
  else
    echo "bench: no reconciler-aws beside $AGENT_BIN or in \$PATH: building the tree's"
    build_helper
  fi
  (cd "$root" && go build -o "$work/fakeaws" ./bench/fakeaws)
fi
mkdir -p "$work/img/app"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/img/app/server" ./demo/app)
tar -C "$work/img" -cf "$work/img.tar" app
docker import --change 'ENTRYPOINT ["/app/server"]' --change 'CMD ["serve"]' --change 'EXPOSE 8080' \
  "$work/img.tar" "$image" >/dev/null

echo "== private nginx on 127.0.0.1:$port"
start_nginx

# SECRETS=ssm: the fake SSM, its variables for the agent only, and the
# service's three references to its parameters (values of this run only).
aws_env=()
secrets_yaml=
if [ "$SECRETS" = ssm ]; then
  echo "== fake SSM on 127.0.0.1 (bench/fakeaws), 3 parameters"
  "$work/fakeaws" -param "/bench/$env/db_password=pw-$$" -param "/bench/$env/api_key=key-$$" \
    -param "/bench/$env/redis_addr=127.0.0.1:6379" > "$work/aws.env" 2> "$work/fakeaws.log" &
  fake_pid=$!
  end=$(( $(date +%s) + 30 ))
  until grep -q '^AWS_SHARED_CREDENTIALS_FILE=' "$work/aws.env" 2>/dev/null; do
    if ! kill -0 "$fake_pid" 2>/dev/null || [ "$(date +%s)" -ge "$end" ]; then
      echo "bench: bench/fakeaws did not start"; cat "$work/fakeaws.log"; exit 1
    fi
    sleep 0.05
  done
  mapfile -t aws_env < "$work/aws.env"
  secrets_yaml="
    secrets:
      DB_PASSWORD: ssm:/bench/$env/db_password
      API_KEY: ssm:/bench/$env/api_key
      REDIS_ADDR: ssm:/bench/$env/redis_addr"
fi
# ssm_requests: the SSM requests the fake has served so far (it prints a
# line of counts on SIGUSR1).
ssm_requests() {
  local lines; lines=$(wc -l < "$work/fakeaws.log")
  kill -USR1 "$fake_pid"
  local end=$(( $(date +%s) + 10 ))
  until [ "$(wc -l < "$work/fakeaws.log")" -gt "$lines" ]; do
    [ "$(date +%s)" -lt "$end" ] || { echo "bench: bench/fakeaws did not report its calls" >&2; exit 1; }
    sleep 0.01
  done
  grep '^calls ' "$work/fakeaws.log" | tail -1 | tr ' ' '\n' | awk -F= '$1 == "AmazonSSM.GetParameters" {print $2}'
}

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
    drain: 1s$secrets_yaml
YAML
commit "deploy $1"
}
write_env v0
git init -q --bare -b main "$work/remote.git"
git -C "$repo" push -q "$work/remote.git" main

secret=bench-secret-$$
echo "$secret" > "$work/secret"
env ${aws_env[@]+"${aws_env[@]}"} "$work/reconciler" run --env "$env" --repo "file://$work/remote.git" --state-dir "$work/state" \
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
# utime+stime+cutime+cstime: the agent and the children it waited for
# (with SECRETS=ssm, a reconciler-aws per drift check), in ticks; children alone
# are fields 16 and 17.
cpu() { awk '{print $14+$15+$16+$17}' "/proc/$agent_pid/stat"; }
cpu_children() { awk '{print $16+$17}' "/proc/$agent_pid/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$agent_pid/status"; }
fetch_count() { curl -fsS "http://$listen/metrics" | awk '/^reconciler_git_fetch_duration_seconds_count/ {print $2}'; }
f0=$(fetch_count)
[ "$SECRETS" = ssm ] && s0=$(ssm_requests)
c0=$(cpu); k0=$(cpu_children); t0=$(date +%s%N); max=0; sum=0; n=0
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
  r=$(rss); sum=$((sum + r)); n=$((n + 1)); [ "$r" -gt "$max" ] && max=$r
  sleep 5
done
c1=$(cpu); k1=$(cpu_children); t1=$(date +%s%N)
[ "$SECRETS" = ssm ] && s1=$(ssm_requests)
if tail -n +"$((idle_lines + 1))" "$work/agent.log" | grep -qE '"msg":"(deploying|repaired drift)"'; then
  echo "bench: the agent deployed or repaired during the idle window; the figures are not idle:"
  tail -n +"$((idle_lines + 1))" "$work/agent.log"
  exit 1
fi
fetches=$(fetch_count)
awk -v c=$((c1 - c0)) -v k=$((k1 - k0)) -v hz="$hz" -v ns=$((t1 - t0)) -v max="$max" -v sum="$sum" -v n="$n" \
  -v f="$fetches" -v fw=$((fetches - f0)) -v s="$SECRETS" 'BEGIN {
  printf "idle (secrets: %s): RSS max %.1f MB, mean %.1f MB; CPU %.3f%% of one core, agent and waited-for children (utime+stime+cutime+cstime: %d ticks in %.0f s, %d of them children); %d fetches in the window, %d so far\n",
    s, max/1024, sum/n/1024, 100*c/hz/(ns/1e9), c, ns/1e9, k, fw, f }'
if [ "$SECRETS" = ssm ]; then
  echo "idle: $((s1 - s0)) SSM GetParameters requests in the window, one reconciler-aws process each (3 ssm: references per request; one per drift check)"
fi
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
