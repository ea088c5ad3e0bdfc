#!/usr/bin/env bash
# Installs the Debian packages the tests, the demo and the benchmarks use,
# when they are missing: nginx (a private instance per test), wrk (load),
# git, docker-registry (a private registry per registry test), prometheus
# (promtool checks deploy/alerts.yml and the --metrics-file output), shellcheck
# (actionlint checks the workflows' scripts with it), postgresql (migration
# tests), redis-server (fleet tests) and iproute2 and util-linux (the fleet
# tests' hosts: network and mount namespaces). Needs root (or sudo) and apt-get; elsewhere it says what is missing.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v git >/dev/null 2>&1 || need+=(git)
command -v curl >/dev/null 2>&1 || need+=(curl)                        # the TLS bootstrap test's stand-in certbot
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry) # registry fault tests
command -v gcc >/dev/null 2>&1 || need+=(gcc)                         # go test -race
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)            # actionlint checks the workflows' run: scripts with it
command -v chattr >/dev/null 2>&1 || need+=(e2fsprogs)                # immutable confDir fault test
command -v promtool >/dev/null 2>&1 || need+=(prometheus)             # promtool: alert rules, metrics file
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql) # migration tests: a private server per test
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)        # fleet tests: a private coordination store per test
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || need+=(iproute2) # fleet tests: hosts as network namespaces (internal/testenv/hosts.go)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)              # fleet tests: nsenter and unshare enter and make the hosts' namespaces
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${need[*]} (install them; this script knows only apt-get)" >&2
  exit 1
fi
echo "installing ${need[*]} with apt-get" >&2
$sudo apt-get update -qq
# sudo resets the environment: set DEBIAN_FRONTEND on its far side.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package starts the system nginx; the tests start their own instances
# and never use it, so stop it where we can.
if [[ " ${need[*]} " == *" nginx "* ]]; then
  $sudo nginx -s quit 2>/dev/null || true
fi
# Likewise the Prometheus server the prometheus package starts (only its
# promtool is used).
if [[ " ${need[*]} " == *" prometheus "* ]]; then
  $sudo service prometheus stop >/dev/null 2>&1 || true
fi
# Likewise PostgreSQL's and Redis's system services: the tests start private
# instances on free ports.
if [[ " ${need[*]} " == *" postgresql "* ]]; then
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi
if [[ " ${need[*]} " == *" redis-server "* ]]; then
  $sudo service redis-server stop >/dev/null 2>&1 || true
fi
# Likewise the registry's system service, where the package started one.
if [[ " ${need[*]} " == *" docker-registry "* ]]; then
  $sudo service docker-registry stop >/dev/null 2>&1 || true
fi
