# Shared by the bench scripts and demo/demo.sh: sourced, not run. Everything
# is on loopback, in $work, and removed by cleanup (EXIT trap set by the
# sourcing script). LIB_NAME (default bench) names the work dir and the env;
# IMAGE_REPO (default reconciler-bench/app) the images.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/bin/reconciler"
[ -x "$bin" ] || (cd "$root" && make -s build)
docker info >/dev/null 2>&1 || { echo "bench: no Docker engine reachable" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
LIB_NAME=${LIB_NAME:-bench}
IMAGE_REPO=${IMAGE_REPO:-reconciler-bench/app}
work=$(mktemp -d "/tmp/reconciler-$LIB_NAME.XXXXXX")
chmod 755 "$work"
env=$LIB_NAME$$

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# images: $IMAGE_REPO:v1 and :v2, the demo app imported offline (a file
# /variant makes them two different images).
images() {
  mkdir -p "$work/img/app"
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/img/app/server" ./demo/app)
  for v in v1 v2; do
    echo "$v" > "$work/img/variant"
    tar -C "$work/img" -cf "$work/img.tar" app variant
    docker import --change 'ENTRYPOINT ["/app/server"]' --change 'CMD ["serve"]' --change 'EXPOSE 8080' \
      "$work/img.tar" "$IMAGE_REPO:$v" >/dev/null
  done
}

# start_nginx: a private nginx whose http block includes $work/nginx/conf.d.
start_nginx() {
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
  NGX_ARGS="-c $work/nginx/nginx.conf -p $work/nginx -e $work/nginx/error.log"
  $NGINX $NGX_ARGS
}

stop_nginx() { [ -f "$work/nginx/nginx.pid" ] && $NGINX $NGX_ARGS -s quit 2>/dev/null || true; }

new_repo() {
  repo="$work/repo"
  mkdir -p "$repo/envs"
  git -C "$repo" init -q -b main
  git -C "$repo" config user.email bench@example.com
  git -C "$repo" config user.name bench
}

commit() { git -C "$repo" add -A && git -C "$repo" commit -qm "$1"; }

R() { "$bin" --state-dir "$work/state" "$@"; }

# logged LOG CMD...: CMD with stdout dropped and stderr in LOG, which is
# printed when CMD fails (cleanup removes $work, and LOG with it).
logged() {
  local log=$1; shift
  "$@" >/dev/null 2>"$log" || { echo "bench: $* failed:" >&2; cat "$log" >&2; return 1; }
}

remove_env_containers() {
  ids=$(docker ps -aq --filter "label=reconciler.env=$1"; docker ps -aq --filter "label=reconciler.proxy-env=$1")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  # The env's network (reconciler creates it), once its containers are gone.
  nets=$(docker network ls -q --filter "label=reconciler.env=$1")
  [ -z "$nets" ] || docker network rm $nets >/dev/null 2>&1 || true
  # Name proxy images that no container uses any more (built from bin/reconciler).
  docker images -q reconciler-name-proxy | xargs -r docker rmi >/dev/null 2>&1 || true
}

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
max() { sort -n | tail -1; }

machine() {
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -sr)"
  echo "- Docker $(docker version --format '{{.Server.Version}}'), $($NGINX -v 2>&1 | sed 's/.*: //'), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), docker-compose $(docker-compose version --short 2>/dev/null || echo none), compose v2 $("${COMPOSE:-$(go env GOPATH)/bin/docker-compose}" version --short 2>/dev/null || echo "not built (bench/compose-v2.sh)"), $(go version | cut -d' ' -f3)"
  echo "- load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), reconciler $(git -C "$root" describe --always --dirty)"
}
