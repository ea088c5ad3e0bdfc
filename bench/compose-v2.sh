#!/usr/bin/env bash
# Builds docker compose v2 (COMPOSE_VERSION, default v2.40.3) from the Go
# module proxy into $(go env GOPATH)/bin/docker-compose, outside the
# repository (never committed), unless that version is already there.
# bench/noop.sh compares against it. `go install ...@version` refuses
# this module (its go.mod has exclude directives), so it is built inside
# the module cache's copy instead. Several minutes the first time.
set -euo pipefail
v=${COMPOSE_VERSION:-v2.40.3}
out=${COMPOSE:-$(go env GOPATH)/bin/docker-compose}
case "$("$out" version --short 2>/dev/null || true)" in
  "$v" | "${v#v}") exit 0 ;;
esac
echo "building docker compose $v into $out (once)" >&2
dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v2@$v" | awk -F'"' '/"Dir"/ {print $4}')
mkdir -p "$(dirname "$out")"
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$v" -o "$out" ./cmd)
"$out" version
