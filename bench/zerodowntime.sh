#!/usr/bin/env bash
# Failed requests during a deploy under keep-alive load: wrk, 32 connections,
# 10 s, the switch ~5 s in, through one private nginx, for three ways of
# deploying the same app on the same machine in the same run:
#   reconciler    blue-green, the switch is a marker file (no reload)
#   recreate      docker-compose up -d with a new image: stop the old
#                 container, start the new one on the same port
#   reload        blue and green running, nginx upstream rewritten from blue
#                 to green, nginx -s reload
# Each deploy run follows a steady-state run with the same settings.
# Prints a markdown table on stdout.
# Images of this run only (another run's import must not move the tag).
IMAGE_REPO=${IMAGE_REPO:-reconciler-bench-zd$$/app}
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
DUR=${DUR:-10}
HALF=$((DUR / 2))
cleanup() {
  set +e
  stop_nginx
  remove_env_containers "$env"
  [ -f "$work/compose/docker-compose.yml" ] && (cd "$work/compose" && docker-compose -p "zd$$" down -t 1 >/dev/null 2>&1)
  docker rm -f "zd$$-blue" "zd$$-green" >/dev/null 2>&1
  docker rmi "$IMAGE_REPO:v1" "$IMAGE_REPO:v2" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
images
start_nginx
reload_cmd="$NGINX $NGX_ARGS -s reload"

wrk_run() { wrk -t2 -c32 -d"${DUR}s" --latency "$1" > "$2"; }
wait_ok() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "bench: $1 does not answer" >&2; return 1; }

# p99 and other figures from a wrk report, as "reqs rps p99ms connect read write timeout non2xx"
parse() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    / 99%/ {p99=ms($2)}
    /requests in/ {reqs=$1}
    /Requests\/sec/ {rps=$2}
    /Socket errors/ {gsub(",",""); c=$4; r=$6; w=$8; t=$10}
    /Non-2xx/ {n=$NF}
    END {printf "%d %.0f %.2f %d %d %d %d %d\n", reqs, rps, p99, c+0, r+0, w+0, t+0, n+0}' "$1"
}

row() { # name steady.txt deploy.txt
  read -r sreq srps sp99 _ _ _ _ _ < <(parse "$2")
  read -r dreq drps dp99 c r w t n < <(parse "$3")
  printf '| %s | %s | %s | %s | %s / %s (%+.1f%%) | %s / %s ms (%.1f×) |\n' "$1" "$dreq" "$n" \
    "$((c + r + w + t)) (connect $c, read $r, write $w, timeout $t)" "$drps" "$srps" \
    "$(echo "($drps - $srps) * 100 / $srps" | bc -l)" "$dp99" "$sp99" "$(echo "$dp99 / $sp99" | bc -l)"
}

# --- reconciler -------------------------------------------------------------
new_repo
p1=$(freeport)
write_env() {
  cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q $NGX_ARGS
  reload: $reload_cmd
services:
  web:
    image: $IMAGE_REPO:$1
    containerPort: 8080
    listen: "127.0.0.1:$p1"
    env: {VERSION: "$1"}
    memory: 64m
    health: {path: /health, interval: 100ms, healthyThreshold: 2, startTimeout: 20s}
    drain: 2s
YAML
  commit "$1"
}
write_env v1
logged "$work/first-apply.log" R apply --env "$env" --repo "$repo"
wait_ok "http://127.0.0.1:$p1/"
wrk_run "http://127.0.0.1:$p1/" "$work/rec-steady.txt"
write_env v2
wrk_run "http://127.0.0.1:$p1/" "$work/rec-deploy.txt" &
sleep "$HALF"
logged "$work/rec-apply.log" R apply --env "$env" --repo "$repo"
wait
curl -s "http://127.0.0.1:$p1/" | grep -q version=v2 || { echo "bench: reconciler did not deploy v2" >&2; exit 1; }

# --- recreate (docker-compose up -d) ----------------------------------------
mkdir -p "$work/compose"
p2=$(freeport); p3=$(freeport)
cat > "$work/compose/docker-compose.yml" <<YAML
version: "2.4"
services:
  web:
    image: $IMAGE_REPO:\${TAG}
    ports: ["127.0.0.1:$p2:8080"]
    environment: {VERSION: "\${TAG}"}
    mem_limit: 64m
YAML
site() { # listen port, backend port
  cat > "$work/nginx/conf.d/$3.conf" <<NGINX
upstream $3 { server 127.0.0.1:$2 max_fails=0; keepalive 32; }
server {
  listen 127.0.0.1:$1;
  location / {
    proxy_pass http://$3;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
  }
}
NGINX
}
(cd "$work/compose" && TAG=v1 docker-compose -p "zd$$" up -d </dev/null >/dev/null 2>&1)
site "$p3" "$p2" compose
$reload_cmd
wait_ok "http://127.0.0.1:$p3/"
wrk_run "http://127.0.0.1:$p3/" "$work/cmp-steady.txt"
wrk_run "http://127.0.0.1:$p3/" "$work/cmp-deploy.txt" &
sleep "$HALF"
(cd "$work/compose" && TAG=v2 docker-compose -p "zd$$" up -d </dev/null >/dev/null 2>&1)
wait
curl -s "http://127.0.0.1:$p3/" | grep -q version=v2 || { echo "bench: compose did not deploy v2" >&2; exit 1; }

# --- plain nginx reload switch -----------------------------------------------
pb=$(freeport); pg=$(freeport); p4=$(freeport)
docker run -d --name "zd$$-blue" -m 64m -e VERSION=v1 -p "127.0.0.1:$pb:8080" "$IMAGE_REPO:v1" >/dev/null
docker run -d --name "zd$$-green" -m 64m -e VERSION=v2 -p "127.0.0.1:$pg:8080" "$IMAGE_REPO:v2" >/dev/null
wait_ok "http://127.0.0.1:$pg/health"
site "$p4" "$pb" reload
$reload_cmd
wait_ok "http://127.0.0.1:$p4/"
wrk_run "http://127.0.0.1:$p4/" "$work/rld-steady.txt"
wrk_run "http://127.0.0.1:$p4/" "$work/rld-deploy.txt" &
sleep "$HALF"
site "$p4" "$pg" reload
$reload_cmd
wait
curl -s "http://127.0.0.1:$p4/" | grep -q version=v2 || { echo "bench: reload did not switch to v2" >&2; exit 1; }

echo "### Failed requests during a deploy (wrk -t2 -c32 -d${DUR}s --latency, switch at ~${HALF} s)"
echo
echo "| deploy | requests | HTTP errors (non-2xx) | socket errors | req/s deploy / steady | p99 deploy / steady |"
echo "|---|---|---|---|---|---|"
row "reconciler (marker switch)" "$work/rec-steady.txt" "$work/rec-deploy.txt"
row "recreate (docker-compose up -d)" "$work/cmp-steady.txt" "$work/cmp-deploy.txt"
row "nginx reload switch" "$work/rld-steady.txt" "$work/rld-deploy.txt"
echo
if [ -n "${VERBOSE:-}" ]; then for f in "$work"/*-deploy.txt; do echo "== $f"; cat "$f"; done; fi
