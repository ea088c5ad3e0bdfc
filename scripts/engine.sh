#!/usr/bin/env bash
# Waits until the Docker engine answers. On a machine that has just booted the
# daemon may still be starting: wait for it (up to ENGINE_WAIT seconds, default
# 120). When no dockerd runs at all and we are root, start one, logging to
# /var/log/dockerd.log, and wait for it too. Exits 1, saying why, when the
# engine never answers.
set -euo pipefail
wait_s=${ENGINE_WAIT:-120}
answers() { docker info >/dev/null 2>&1; }
answers && exit 0
if ! pgrep -x dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v dockerd >/dev/null 2>&1; then
    echo "no Docker engine runs: starting dockerd (log: /var/log/dockerd.log)" >&2
    nohup dockerd >>/var/log/dockerd.log 2>&1 &
  else
    echo "no Docker engine runs, and this script cannot start one (needs root and dockerd): start the engine and retry" >&2
    exit 1
  fi
fi
for _ in $(seq "$wait_s"); do
  answers && exit 0
  sleep 1
done
echo "docker engine not reachable after ${wait_s}s: 'docker info' says:" >&2
docker info 2>&1 | tail -5 >&2 || true
exit 1
