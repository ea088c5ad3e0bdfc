#!/usr/bin/env bash
# No-op reconcile against docker compose v2, for COUNTS services of the demo
# app (16m memory limit each), side by side in one run: first apply (wall,
# peak RSS), then no-op `diff` and `apply` as whole processes and compose
# v2's `up -d` with nothing to do on an equivalent compose file (same
# image, same count), interleaved run by run (median of RUNS runs, peak
# RSS), and the ratios. Also
# the process floor: `reconciler version` against `docker compose version`.
#
# Compose v2 is a Go module, built outside the repository (never
# committed) by bench/compose-v2.sh (make bench runs it) into
# $(go env GOPATH)/bin/docker-compose; COMPOSE names another binary.
# NO_COMPOSE=1 skips compose. BASELINE_BIN=path/to/an/older/reconciler
# also measures that binary's no-op diff and apply on the same containers,
# in the same run (the before of a before/after). Prints markdown on stdout.
# Images of this run only: another run's import must not move the tag
# under the measured containers (that is drift, and apply repairs it).
IMAGE_REPO=${IMAGE_REPO:-reconciler-bench-noop$$/app}
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-10}
COUNTS=${COUNTS:-"3 30 100 300"}
COMPOSE=${COMPOSE:-$(go env GOPATH)/bin/docker-compose}
if [ -z "${NO_COMPOSE:-}" ] && ! "$COMPOSE" version >/dev/null 2>&1; then
  echo "bench: no compose v2 at $COMPOSE (bench/compose-v2.sh builds it; or NO_COMPOSE=1)" >&2
  exit 1
fi
cleanup() {
  set +e
  for n in $COUNTS; do
    remove_env_containers "$env-$n"
    [ -f "$work/compose-$n/compose.yaml" ] && "$COMPOSE" -f "$work/compose-$n/compose.yaml" -p "noop$$-$n" down -t 1 >/dev/null 2>&1
  done
  docker rmi "$IMAGE_REPO:v1" "$IMAGE_REPO:v2" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
measure="$work/measure"
(cd "$root" && go build -o "$measure" ./bench/measure)
images
new_repo
mkdir -p "$work/conf.d"
chmod 755 "$work/conf.d"

# ratio A B: A/B to two places, or - when either is not a number.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a+0 > 0 && b+0 > 0) printf "%.2f×", a/b; else print "-" }'; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# The process floor of each side, interleaved like the no-ops below.
floor=("$bin" version)
[ -n "${NO_COMPOSE:-}" ] || floor+=(::: "$COMPOSE" version)
if [ -n "${BASELINE_BIN:-}" ]; then
  # Builds from before the version command answer --version alike.
  bver=version
  "$BASELINE_BIN" version >/dev/null 2>&1 || bver=--version
  floor+=(::: "$BASELINE_BIN" "$bver")
fi
mapfile -t flines < <("$measure" -n "$RUNS" -- "${floor[@]}")
[ ${#flines[@]} -ge 1 ] || { echo "bench: the process floor runs failed (measure's message above)" >&2; exit 1; }
read -r ver_ms ver_min ver_max ver_rss <<<"${flines[0]}"
fnext=1
if [ -z "${NO_COMPOSE:-}" ]; then
  read -r cver_ms cver_min cver_max cver_rss <<<"${flines[1]}"
  cver="$cver_ms ms ($cver_min–$cver_max) | $cver_rss MiB"
  fnext=2
else
  cver_ms=- cver_rss=- cver="(skipped) | -"
fi
[ -z "${BASELINE_BIN:-}" ] || read -r bver_ms bver_min bver_max bver_rss <<<"${flines[$fnext]}"

rows=() brows=()
for n in $COUNTS; do
  e="$env-$n"
  {
    echo "environment: $e"
    echo "nginx: {confDir: $work/conf.d, test: \"true\", reload: \"true\"}"
    echo "services:"
    for i in $(seq -f '%03g' 1 "$n"); do
      cat <<YAML
  s$i:
    image: $IMAGE_REPO:v1
    containerPort: 8080
    env: {VERSION: v1}
    memory: 16m
    health: {path: /health, interval: 100ms, healthyThreshold: 1, startTimeout: 120s}
    drain: 100ms
YAML
    done
  } > "$repo/envs/$e.yaml"
  commit "$n services"
  read -r dep_ms _ _ dep_rss < <("$measure" -n 1 -- "$bin" --state-dir "$work/state" apply --env "$e" --repo "$repo")
  R diff --env "$e" --repo "$repo" >/dev/null || { echo "bench: $n services not in sync after apply" >&2; exit 1; }

  mkdir -p "$work/compose-$n"
  {
    echo "services:"
    for i in $(seq -f '%03g' 1 "$n"); do
      cat <<YAML
  s$i:
    image: $IMAGE_REPO:v1
    ports: ["127.0.0.1::8080"]
    environment: {VERSION: v1}
    mem_limit: 16m
YAML
    done
  } > "$work/compose-$n/compose.yaml"
  cup=("$COMPOSE" -f "$work/compose-$n/compose.yaml" -p "noop$$-$n" up -d)
  if [ -n "${NO_COMPOSE:-}" ]; then
    cmp_ms=- cmp="(skipped)" cmp_rss=- cup=()
  elif ! timeout 900 "${cup[@]}" </dev/null >/dev/null 2>&1; then
    cmp_ms=- cmp="(first up -d failed or took > 900 s)" cmp_rss=- cup=()
  fi

  # The no-ops of every side, interleaved run by run (measure's :::), so
  # that each sees the same load: reconciler's diff and apply, the
  # baseline's, compose's up -d. Compose's containers run beside
  # reconciler's meanwhile; reconciler lists them (foreign), compose
  # filters by its project label.
  sides=("$bin" --state-dir "$work/state" diff --env "$e" --repo "$repo" ::: "$bin" --state-dir "$work/state" apply --env "$e" --repo "$repo")
  [ -z "${BASELINE_BIN:-}" ] || sides+=(::: "$BASELINE_BIN" --state-dir "$work/state" diff --env "$e" --repo "$repo" ::: "$BASELINE_BIN" --state-dir "$work/state" apply --env "$e" --repo "$repo")
  [ ${#cup[@]} -eq 0 ] || sides+=(::: "${cup[@]}")
  mapfile -t lines < <("$measure" -n "$RUNS" -- "${sides[@]}")
  [ ${#lines[@]} -ge 2 ] || { echo "bench: the no-op runs of $n services failed (measure's message above)" >&2; exit 1; }
  read -r diff_ms diff_min diff_max diff_rss <<<"${lines[0]}"
  read -r apply_ms apply_min apply_max apply_rss <<<"${lines[1]}"
  next=2
  if [ -n "${BASELINE_BIN:-}" ]; then
    read -r bdiff_ms bdiff_min bdiff_max bdiff_rss <<<"${lines[2]}"
    read -r bapply_ms bapply_min bapply_max bapply_rss <<<"${lines[3]}"
    next=4
    brows+=("| $n | $bdiff_ms ms ($bdiff_min–$bdiff_max), $bdiff_rss MiB | $diff_ms ms, $diff_rss MiB | $(ratio "$diff_ms" "$bdiff_ms") | $bapply_ms ms ($bapply_min–$bapply_max), $bapply_rss MiB | $apply_ms ms, $apply_rss MiB | $(ratio "$apply_ms" "$bapply_ms") |")
    echo "$n services, before / after: ${brows[${#brows[@]}-1]}" >&2
  fi
  if [ ${#cup[@]} -gt 0 ]; then
    read -r cmp_ms cmp_min cmp_max cmp_rss <<<"${lines[$next]}"
    cmp="$cmp_ms ms ($cmp_min–$cmp_max), $cmp_rss MiB"
  fi
  remove_env_containers "$e"
  # A failed down (the engine slow under load) must not end the run
  # silently under set -e; cleanup tries again.
  [ -n "${NO_COMPOSE:-}" ] || "$COMPOSE" -f "$work/compose-$n/compose.yaml" -p "noop$$-$n" down -t 1 >/dev/null 2>&1 || true

  rows+=("| $n | $diff_ms ms ($diff_min–$diff_max), $diff_rss MiB | $apply_ms ms ($apply_min–$apply_max), $apply_rss MiB | $cmp | $(ratio "$diff_ms" "$cmp_ms") / $(ratio "$apply_ms" "$cmp_ms") | $(ratio "$apply_rss" "$cmp_rss") | $dep_ms ms, $dep_rss MiB |")
  # Each row also goes to stderr at once, so a later count that fails
  # (a first apply of 300 services on a loaded machine) loses nothing.
  echo "$n services done (load average $(cut -d' ' -f1-3 /proc/loadavg)): ${rows[${#rows[@]}-1]}" >&2
done

cv=$("$COMPOSE" version --short 2>/dev/null || echo "v2")
echo "### No-op reconcile against docker compose $cv (median of $RUNS runs, range, peak RSS), and first apply"
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)."
echo
echo "| services | reconciler diff (no-op) | reconciler apply (no-op) | compose $cv up -d (no-op) | wall ratio diff / apply ÷ compose | peak RSS ratio apply ÷ compose | reconciler first apply (all started and healthy) |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
if [ -n "${BASELINE_BIN:-}" ]; then
  echo "Before / after, same containers, same run (before: $BASELINE_BIN):"
  echo
  echo "| services | diff before | diff after | ratio | apply before | apply after | ratio |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${brows[@]}"
  echo
  echo "Process floor before (\`$bver\`): $bver_ms ms ($bver_min–$bver_max), $bver_rss MiB; ratio after ÷ before: $(ratio "$ver_ms" "$bver_ms") wall, $(ratio "$ver_rss" "$bver_rss") RSS."
  echo
fi
echo "| process floor | wall | peak RSS |"
echo "|---|---|---|"
echo "| reconciler version | $ver_ms ms ($ver_min–$ver_max) | $ver_rss MiB |"
echo "| compose $cv version | $cver |"
echo "| ratio | $(ratio "$ver_ms" "$cver_ms") | $(ratio "$ver_rss" "$cver_rss") |"
echo
