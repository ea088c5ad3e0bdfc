#!/usr/bin/env bash
# The reconciler demo, on loopback only: builds a demo app image offline,
# makes a scratch git repo with envs/demo<pid>.yaml, starts a private nginx,
# then shows validate, diff, apply, an upgrade v1 → v2 under live keep-alive
# load (wrk) with the count of failed requests, git revert, and apply again.
# Everything it made is removed at the end, also on failure or Ctrl-C.
set -euo pipefail
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || "$(dirname "$0")/../scripts/deps.sh"
LIB_NAME=demo IMAGE_REPO=reconciler-demo/app
# shellcheck source=../bench/lib.sh
source "$(dirname "$0")/../bench/lib.sh"
port=$(freeport)

cleanup() {
  set +e
  echo
  echo "== cleaning up"
  stop_nginx
  remove_env_containers "$env"
  docker rmi "$IMAGE_REPO:v1" "$IMAGE_REPO:v2" >/dev/null 2>&1
  rm -rf "$work"
  echo "removed the demo's containers, images, nginx and $work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

step "build the demo app image offline (static Go binary + docker import)"
images
echo "imported $IMAGE_REPO:v1 and :v2"

step "start a private nginx on 127.0.0.1:$port"
start_nginx

step "a scratch git repo with envs/$env.yaml"
new_repo
mkdir -p "$repo/config"
write_env() { # $1 = image tag
cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q $NGX_ARGS
  reload: $NGINX $NGX_ARGS -s reload
services:
  mcp-server:
    image: $IMAGE_REPO:$1
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
    image: $IMAGE_REPO:v1
    command: ["worker"]
    memory: 32m
    health:
      interval: 200ms
YAML
}
echo "log_level: info" > "$repo/config/mcp-server.yaml"
write_env v1
commit "deploy v1"
cat "$repo/envs/$env.yaml"

step "validate, diff (exit 2 = changes), apply"
run R validate --env "$env" --repo "$repo"
run R diff --env "$env" --repo "$repo" || [ $? -eq 2 ]
run R apply --env "$env" --repo "$repo"
run curl -s "http://127.0.0.1:$port/"

step "upgrade v1 → v2 under live keep-alive load (wrk: 16 connections, never retries)"
write_env v2
commit "deploy v2"
run R diff --env "$env" --repo "$repo" || [ $? -eq 2 ]
if command -v wrk >/dev/null; then
  wrk -t2 -c16 -d8s "http://127.0.0.1:$port/" > "$work/wrk.txt" &
  wrkpid=$!
  sleep 1
  run R apply --env "$env" --repo "$repo"
  wait $wrkpid
  cat "$work/wrk.txt"
  reqs=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
  sock=$(awk -F'[ ,]+' '/Socket errors/ {print $4+$6+$8+$10}' "$work/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  printf '\n\033[1mfailed requests during the upgrade: %s socket errors, %s non-2xx, of %s\033[0m\n' "${sock:-0}" "${non2xx:-0}" "$reqs"
else
  run R apply --env "$env" --repo "$repo"
fi
run curl -s "http://127.0.0.1:$port/"

step "roll back with git revert, then apply"
run git -C "$repo" revert --no-edit HEAD
run R diff --env "$env" --repo "$repo" || [ $? -eq 2 ]
run R apply --env "$env" --repo "$repo"
run curl -s "http://127.0.0.1:$port/"
run R status --env "$env" --repo "$repo"
