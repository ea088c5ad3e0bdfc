#!/usr/bin/env bash
# Emergency rollback: time from the command's start to the previous
# version being served through nginx (polled every 10 ms), and to the
# command's exit, for `reconciler rollback` (the kept previous release is
# resumed) against the baseline of the same move by a forward deploy
# (`git revert` + `apply`: start a new container of the old image). One
# service behind nginx, health 100 ms x 2, drain 1 s. Median of RUNS.
# Prints markdown.
source "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-5}
cleanup() { set +e; stop_nginx; remove_env_containers "$env"; rm -rf "$work"; }
trap cleanup EXIT
images
start_nginx
new_repo
port=$(freeport)
write_env() {
  cat > "$repo/envs/$env.yaml" <<YAML
environment: $env
nginx:
  confDir: $work/nginx/conf.d
  test: $NGINX -t -q $NGX_ARGS
  reload: $NGINX $NGX_ARGS -s reload
services:
  web:
    image: reconciler-bench/app:$1
    containerPort: 8080
    listen: "127.0.0.1:$port"
    env: {VERSION: "$1"}
    memory: 64m
    health: {path: /health, interval: 100ms, healthyThreshold: 2, startTimeout: 20s}
    drain: 1s
YAML
  commit "$1"
}
# timed WANT CMD...: runs CMD, polls nginx until it serves version WANT;
# prints "served_ms total_ms".
timed() {
  local want=$1; shift
  python3 - "$port" "$want" "$work/timed.log" "$@" <<'PY'
import subprocess, sys, time, urllib.request
port, want, log, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
served = None
while served is None:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read().decode()
        if f"version={want} " in body:
            served = time.monotonic() - t0
    except Exception:
        pass
    if served is None:
        time.sleep(0.01)
rc = p.wait()
total = time.monotonic() - t0
if rc != 0:
    sys.stderr.write(open(log).read()); sys.exit(1)
print(int(served * 1000), int(total * 1000))
PY
}
write_env v1
logged "$work/apply.log" R apply --env "$env" --repo "$repo"
write_env v2
logged "$work/apply.log" R apply --env "$env" --repo "$repo"
rs=(); rt=(); bs=(); bt=()
for _ in $(seq "$RUNS"); do
  read -r s t < <(timed v1 "$bin" --state-dir "$work/state" rollback --env "$env" --repo "$repo")
  rs+=("$s"); rt+=("$t")
  logged "$work/resume.log" R resume --env "$env"
  logged "$work/apply.log" R apply --env "$env" --repo "$repo"   # v2 again, v1 kept
  write_env v1
  read -r s t < <(timed v1 "$bin" --state-dir "$work/state" apply --env "$env" --repo "$repo")
  bs+=("$s"); bt+=("$t")
  write_env v2
  logged "$work/apply.log" R apply --env "$env" --repo "$repo"
done
mr=$(printf '%s\n' "${rs[@]}" | median); mb=$(printf '%s\n' "${bs[@]}" | median)
echo "### Emergency rollback: command start to the previous version served through nginx (median of $RUNS)"
echo
echo "| | served by the previous version | command exits |"
echo "|---|---|---|"
echo "| \`reconciler rollback\` (kept containers resumed) | $mr ms (runs: ${rs[*]}) | $(printf '%s\n' "${rt[@]}" | median) ms |"
echo "| baseline: \`git revert\` + \`apply\` (new container of the old image) | $mb ms (runs: ${bs[*]}) | $(printf '%s\n' "${bt[@]}" | median) ms |"
echo "| ratio rollback / baseline | $(python3 -c "print(f'{$mr/$mb:.2f}')") | |"
echo
machine
