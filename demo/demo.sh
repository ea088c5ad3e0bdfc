#!/usr/bin/env bash
# The reconciler demo, on loopback only: builds a demo app image offline,
# makes a scratch git repo with envs/demo.yaml, starts a private nginx, then
# shows validate, diff, apply, an upgrade v1 → v2 under live keep-alive load
# (wrk) with the count of failed requests, git revert, and apply again.
# Everything it made is removed at the end, also on failure or Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin/reconciler"
[ -x "$bin" ] || (cd "$root" && make -s build)
docker info >/dev/null 2>&1 || { echo "demo: no Docker engine reachable (docker info failed)" >&2; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || "$root/scripts/deps.sh"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

env=demo$$
work=$(mktemp -d /tmp/reconciler-demo.XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)

cleanup() {
  set +e
  echo
  echo "== cleaning up"
  [ -f "$work/nginx/nginx.pid" ] && "$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" -s quit 2>/dev/null
  ids=$(docker ps -aq --filter "label=reconciler.env=$env")
  [ -n "$ids" ] && docker rm -f $ids >/dev/null
  rm -rf "$work"
  echo "removed the demo's containers, nginx and $work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

step "build the demo app image offline (static Go binary + docker import)"
mkdir -p "$work/img/app"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/img/app/server" ./demo/app)
for v in v1 v2; do
  echo "$v" > "$work/img/variant"
  tar -C "$work/img" -cf "$work/img.tar" app variant
  docker import --change 'ENTRYPOINT ["/app/server"]' --change 'CMD ["serve"]' --change 'EXPOSE 8080' \
    "$work/img.tar" "reconciler-demo/app:$v" >/dev/null
  echo "imported reconciler-demo/app:$v"
done

step "start a private nginx on 127.0.0.1:$port"
mkdir -p "$work/nginx/conf.d" "$work/nginx/tmp"
chmod -R 755 "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  include $work/nginx/conf.d/*.conf;
}
NGINX
"$NGINX" -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log"

step "a scratch git repo with envs/$env.yaml"
repo="$work/repo"
mkdir -p "$repo/envs" "$repo/config"
git -C "$repo" init -q -b main
git -C "$repo" config user.email demo@example.com
git -C "$repo" config user.name "Demo"
write_env() { # $1 = image tag
cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q -c $work/nginx/nginx.conf -p $work/nginx -e $work/nginx/error.log
  reload: $NGINX -c $work/nginx/nginx.conf -p $work/nginx -e $work/nginx/error.log -s reload
services:
  mcp-server:
    image: reconciler-demo/app:$1
    containerPort: 8080
    listen: "127.0.0.1:$port"
    env:
      VERSION: "$1"
    files:
      - source: config/mcp-server.yaml
        target: /app/config.yaml
    memory: 64m
    health:
      path: /health
      interval: 200ms
      healthyThreshold: 2
      startTimeout: 20s
    drain: 2s
  worker:
    image: reconciler-demo/app:v1
    command: ["worker"]
    memory: 32m
    health:
      interval: 200ms
YAML
}
echo "log_level: info" > "$repo/config/mcp-server.yaml"
write_env v1
git -C "$repo" add -A && git -C "$repo" commit -qm "deploy v1"
sed -n '1,40p' "$repo/envs/$env.yaml"

R=("$bin" --state-dir "$work/state")
step "validate, diff (exit 2 = changes), apply"
run "${R[@]}" validate --env "$env" --repo "$repo"
run "${R[@]}" diff --env "$env" --repo "$repo" || [ $? -eq 2 ]
run "${R[@]}" apply --env "$env" --repo "$repo"
run curl -s "http://127.0.0.1:$port/"

step "upgrade v1 → v2 under live keep-alive load (wrk: 16 connections, never retries)"
write_env v2
git -C "$repo" commit -qam "deploy v2"
run "${R[@]}" diff --env "$env" --repo "$repo" || [ $? -eq 2 ]
if command -v wrk >/dev/null; then
  wrk -t2 -c16 -d8s "http://127.0.0.1:$port/" > "$work/wrk.txt" &
  wrkpid=$!
  sleep 1
  run "${R[@]}" apply --env "$env" --repo "$repo"
  wait $wrkpid
  cat "$work/wrk.txt"
  reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' "$work/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  printf '\n\033[1mfailed requests during the upgrade: %s socket errors, %s non-2xx, of %s\033[0m\n' "${sock:-0}" "${non2xx:-0}" "$reqs"
else
  run "${R[@]}" apply --env "$env" --repo "$repo"
fi
run curl -s "http://127.0.0.1:$port/"

step "roll back with git revert, then apply"
run git -C "$repo" revert --no-edit HEAD
run "${R[@]}" diff --env "$env" --repo "$repo" || [ $? -eq 2 ]
run "${R[@]}" apply --env "$env" --repo "$repo"
run curl -s "http://127.0.0.1:$port/"
run "${R[@]}" status --env "$env" --repo "$repo"
