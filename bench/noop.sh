#!/usr/bin/env bash
# No-op reconcile cost and apply memory, for 3, 30 and 100 services of the
# demo app (16m memory limit each): first apply (wall, peak RSS), then
# no-op `diff` and `apply` as whole processes (median of RUNS runs, peak
# RSS), and in the same run Debian's docker-compose `up -d` with nothing to
# do on an equivalent compose file (same image, same count; NO_COMPOSE=1
# skips it: its first up -d of 30 services hangs on a loaded machine).
# Prints a markdown table on stdout.
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-10}
COUNTS=${COUNTS:-"3 30 100"}
cleanup() {
  set +e
  for n in $COUNTS; do
    remove_env_containers "$env-$n"
    [ -f "$work/compose-$n/docker-compose.yml" ] && (cd "$work/compose-$n" && docker-compose -p "noop$$-$n" down -t 1 >/dev/null 2>&1)
  done
  rm -rf "$work"
}
trap cleanup EXIT
measure="$work/measure"
(cd "$root" && go build -o "$measure" ./bench/measure)
images
new_repo
mkdir -p "$work/conf.d"
chmod 755 "$work/conf.d"

rows=()
for n in $COUNTS; do
  e="$env-$n"
  {
    echo "environment: $e"
    echo "nginx: {confDir: $work/conf.d, test: \"true\", reload: \"true\"}"
    echo "services:"
    for i in $(seq -f '%03g' 1 "$n"); do
      cat <<YAML
  s$i:
    image: reconciler-bench/app:v1
    containerPort: 8080
    env: {VERSION: v1}
    memory: 16m
    health: {path: /health, interval: 100ms, healthyThreshold: 1, startTimeout: 60s}
    drain: 100ms
YAML
    done
  } > "$repo/envs/$e.yaml"
  commit "$n services"
  read -r dep_ms _ _ dep_rss < <("$measure" -n 1 -- "$bin" --state-dir "$work/state" apply --env "$e" --repo "$repo")
  R diff --env "$e" --repo "$repo" >/dev/null || { echo "bench: $n services not in sync after apply" >&2; exit 1; }
  read -r diff_ms diff_min diff_max diff_rss < <("$measure" -n "$RUNS" -- "$bin" --state-dir "$work/state" diff --env "$e" --repo "$repo")
  read -r apply_ms apply_min apply_max apply_rss < <("$measure" -n "$RUNS" -- "$bin" --state-dir "$work/state" apply --env "$e" --repo "$repo")
  remove_env_containers "$e"

  mkdir -p "$work/compose-$n"
  {
    echo 'version: "2.4"'
    echo "services:"
    for i in $(seq -f '%03g' 1 "$n"); do
      cat <<YAML
  s$i:
    image: reconciler-bench/app:v1
    ports: ["127.0.0.1::8080"]
    environment: {VERSION: v1}
    mem_limit: 16m
YAML
    done
  } > "$work/compose-$n/docker-compose.yml"
  # docker-compose 1.29 was seen to hang creating 100 containers at its
  # default parallelism: bound it and say so instead of waiting for ever.
  if [ -n "${NO_COMPOSE:-}" ]; then
    cmp_ms="(skipped)" cmp_min=- cmp_max=- cmp_rss=-
  elif (cd "$work/compose-$n" && COMPOSE_PARALLEL_LIMIT=8 timeout 600 docker-compose -p "noop$$-$n" up -d </dev/null >/dev/null 2>&1); then
    read -r cmp_ms cmp_min cmp_max cmp_rss < <(cd "$work/compose-$n" && "$measure" -n "$((RUNS < 5 ? RUNS : 5))" -- docker-compose -p "noop$$-$n" up -d </dev/null)
  else
    cmp_ms="(first up -d failed or took > 600 s)" cmp_min=- cmp_max=- cmp_rss=-
  fi
  (cd "$work/compose-$n" && docker-compose -p "noop$$-$n" down -t 1 >/dev/null 2>&1)

  echo "$n services done" >&2
  rows+=("| $n | $diff_ms ms ($diff_min–$diff_max), $diff_rss MiB | $apply_ms ms ($apply_min–$apply_max), $apply_rss MiB | $cmp_ms ms ($cmp_min–$cmp_max), $cmp_rss MiB | $dep_ms ms, $dep_rss MiB |")
done

echo "### No-op reconcile (median of $RUNS runs, range, peak RSS) and first apply"
echo
echo "| services | reconciler diff (no-op) | reconciler apply (no-op) | docker-compose $(docker-compose version --short) up -d (no-op) | reconciler first apply (all containers started and healthy) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
