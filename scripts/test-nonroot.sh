#!/usr/bin/env bash
# Runs the unit tier as an unprivileged user (nobody), proving the unit
# tests pass without root: root-only tests must skip, never fail. As root,
# it copies the tree and the module download cache where nobody can read
# them and runs `go test` there with no network (GOPROXY=file://).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "test-nonroot: not root already; \`make test\` is the non-root run"
  exit 0
fi
go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
work=$(mktemp -d /var/tmp/berth-nonroot.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
mkdir -p "$work/src" "$work/home"
tar -C . --exclude=./bin --exclude=./.git -cf - . | tar -C "$work/src" -xf -
cp -a "$("$go" env GOMODCACHE)/cache/download" "$work/proxy"
chown -R 65534:65534 "$work"
chmod 755 "$work"
cd "$work/src"
pkgs=$("$go" list ./... | grep -v /test/)
# shellcheck disable=SC2086
setpriv --reuid=65534 --regid=65534 --clear-groups \
  env -i PATH="$(dirname "$go"):/usr/bin:/bin" HOME="$work/home" \
  GOMODCACHE="$work/home/mod" GOCACHE="$work/home/cache" GOPROXY="file://$work/proxy" \
  GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off \
  "$go" test -count=1 $pkgs
