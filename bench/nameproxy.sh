#!/usr/bin/env bash
# The name proxy in containers, as apply runs it: idle memory per proxy,
# and the forwarding hop's latency and throughput against a direct call.
#
# One demo-app container (the backend, alias api-blue on a private network)
# and two proxies in front of it, each reached on a port published on
# 127.0.0.1: the image built from bin/reconciler-nameproxy (cmd/nameproxy,
# what apply uses when it is installed beside reconciler) and the image
# built from bin/reconciler itself (its hidden name-proxy command: the
# fallback, and what every proxy ran before cmd/nameproxy). Memory is
# VmRSS and RssAnon of the proxy process (host /proc) and the container's
# cgroup usage without page cache, idle after start, and again after the
# load. Latency and throughput: wrk -t2 -cC -dDUR s --latency, keep-alive,
# to the backend directly, then through each proxy; REPEATS rounds, the
# median reported (each round runs the three back to back).
# Prints markdown on stdout.
DUR=${DUR:-10}
CONNS=${CONNS:-16}
REPEATS=${REPEATS:-3}
LIB_NAME=bproxy
IMAGE_REPO=${IMAGE_REPO:-reconciler-bench-proxy$$/app}
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
proxy_bin="$root/bin/reconciler-nameproxy"
[ -x "$proxy_bin" ] || (cd "$root" && make -s build)
net=$env
cleanup() {
  set +e
  docker rm -f "$env-api-blue" "$env-proxy-small" "$env-proxy-full" >/dev/null 2>&1
  docker network rm "$net" >/dev/null 2>&1
  docker rmi "reconciler-bench-proxy:small-$env" "reconciler-bench-proxy:full-$env" "$IMAGE_REPO:v1" "$IMAGE_REPO:v2" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

images
# proxy_image TAG BINARY: the binary as /reconciler, the entrypoint apply uses.
proxy_image() {
  mkdir -p "$work/p-$1"
  cp "$2" "$work/p-$1/reconciler"
  tar -C "$work/p-$1" -cf "$work/p-$1.tar" reconciler
  docker import --change 'ENTRYPOINT ["/reconciler", "name-proxy"]' "$work/p-$1.tar" "reconciler-bench-proxy:$1-$env" >/dev/null
}
proxy_image small "$proxy_bin"
proxy_image full "$bin"
mkdir -p "$work/names"
chmod 755 "$work/names"
echo blue > "$work/names/api"
chmod 644 "$work/names/api"
docker network create "$net" >/dev/null
docker run -d --name "$env-api-blue" --network "$net" --network-alias api-blue -p 127.0.0.1::8080 \
  -e VERSION=v1 --memory 64m "$IMAGE_REPO:v1" >/dev/null
for k in small full; do
  # The settings EnsureNameProxy gives a proxy.
  docker run -d --name "$env-proxy-$k" --network "$net" -p 127.0.0.1::8080 -v "$work/names:/names:ro" \
    --read-only --cap-drop ALL --cap-add NET_BIND_SERVICE --security-opt no-new-privileges \
    --memory 256m -e GOMEMLIMIT=192MiB "reconciler-bench-proxy:$k-$env" \
    --service api --port 8080 --marker /names/api >/dev/null
done
hostport() { docker port "$1" 8080/tcp | head -1 | sed 's/.*://'; }
p_direct=$(hostport "$env-api-blue")
p_small=$(hostport "$env-proxy-small")
p_full=$(hostport "$env-proxy-full")
for p in "$p_direct" "$p_small" "$p_full"; do
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o /dev/null "http://127.0.0.1:$p/" || { echo "bench: nothing answers on $p" >&2; exit 1; }
done

# mem NAME: "VmRSS RssAnon cgroup" in MiB, of the container's process.
mem() {
  local pid id cg
  pid=$(docker inspect -f '{{.State.Pid}}' "$1")
  id=$(docker inspect -f '{{.Id}}' "$1")
  cg=""
  for f in "/sys/fs/cgroup/system.slice/docker-$id.scope/memory.current" "/sys/fs/cgroup/docker/$id/memory.current" \
           "/sys/fs/cgroup/memory/docker/$id/memory.usage_in_bytes"; do
    [ -r "$f" ] && cg=$(awk '{printf "%.1f", $1/1048576}' "$f") && break
  done
  awk -v cg="${cg:--}" '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} END {printf "%.1f %.1f %s\n", r/1024, a/1024, cg}' "/proc/$pid/status"
}
sleep 2 # let the proxies settle after the first requests: the idle figure
read -r s_rss s_anon s_cg < <(mem "$env-proxy-small")
read -r f_rss f_anon f_cg < <(mem "$env-proxy-full")
size() { docker image inspect -f '{{.Size}}' "reconciler-bench-proxy:$1-$env" | awk '{printf "%.1f", $1/1048576}'; }

# wrk_stats PORT: "rps p50ms p99ms"
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}'; }
wrk_stats() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$1/")
  echo "$(awk '/^Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out" | ms) $(awk '$1=="99%" {print $2}' <<<"$out" | ms)"
}
declare -A rps p50 p99
for r in $(seq "$REPEATS"); do
  for k in direct small full; do
    port_var="p_$k"
    read -r a b c < <(wrk_stats "${!port_var}")
    rps[$k]+="$a "; p50[$k]+="$b "; p99[$k]+="$c "
  done
  echo "round $r done (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
med() { tr ' ' '\n' | grep . | median; }
read -r s_rss2 s_anon2 s_cg2 < <(mem "$env-proxy-small")
read -r f_rss2 f_anon2 f_cg2 < <(mem "$env-proxy-full")

echo "### The name proxy: memory, and its hop against a direct call"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores). wrk -t2 -c$CONNS -d${DUR}s, keep-alive, median of $REPEATS rounds."
echo
echo "| proxy image | image size | idle: VmRSS / anon / cgroup memory.current | after load: VmRSS / anon / cgroup memory.current |"
echo "|---|---|---|---|"
echo "| cmd/nameproxy (reconciler-nameproxy) | $(size small) MiB | $s_rss / $s_anon / $s_cg MiB | $s_rss2 / $s_anon2 / $s_cg2 MiB |"
echo "| reconciler binary (name-proxy command) | $(size full) MiB | $f_rss / $f_anon / $f_cg MiB | $f_rss2 / $f_anon2 / $f_cg2 MiB |"
echo "| ratio | $(awk -v a="$(size small)" -v b="$(size full)" 'BEGIN {printf "%.2f×", a/b}') | $(awk -v a="$s_rss" -v b="$f_rss" 'BEGIN {printf "%.2f×", a/b}') / $(awk -v a="$s_anon" -v b="$f_anon" 'BEGIN {printf "%.2f×", a/b}') | |"
echo
echo "| path | req/s | p50 | p99 | added p50 / p99 vs direct | throughput vs direct |"
echo "|---|---|---|---|---|---|"
d_rps=$(med <<<"${rps[direct]}") d50=$(med <<<"${p50[direct]}") d99=$(med <<<"${p99[direct]}")
for k in direct small full; do
  label=$k
  [ "$k" = direct ] && label="direct to the backend (baseline)"
  [ "$k" = small ] && label="through cmd/nameproxy"
  [ "$k" = full ] && label="through the reconciler binary"
  r=$(med <<<"${rps[$k]}") a=$(med <<<"${p50[$k]}") b=$(med <<<"${p99[$k]}")
  echo "| $label | $r | $a ms | $b ms | $(awk -v a="$a" -v b="$b" -v c="$d50" -v d="$d99" 'BEGIN {printf "%+.3f / %+.3f ms", a-c, b-d}') | $(awk -v a="$r" -v b="$d_rps" 'BEGIN {printf "%.0f%%", 100*a/b}') |"
done
echo
