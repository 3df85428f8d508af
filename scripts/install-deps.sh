#!/usr/bin/env bash
# Installs everything berth's tests need on Debian 12, and nothing twice:
# Debian packages through apt (only when one is missing), Go tools through
# the module proxy (pinned in go.mod's tool block).
#
#   scripts/install-deps.sh         # what building and every test tier need
#   scripts/install-deps.sh build   # only what building berth needs (make hello)
set -euo pipefail

packages=(
  libseccomp-dev   # the runtime's seccomp filters (cgo)
  pkg-config       # how cgo finds libseccomp
  gcc              # cgo, and the static berth-nsenter
  libc6-dev        # libc.a for the static berth-nsenter
)
if [ "${1:-}" != build ]; then
  packages+=(
    busybox-static   # test images without a network
    nftables         # networking rules
    docker-registry  # a real registry for pull/push tests
    docker.io        # a private dockerd: registry interop and the build corpus
    iproute2         # network namespaces for network tests
    tmux             # interactive (-it) tests
  )
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's docker-registry and docker.io start services (a registry on :5000
# with auth; a dockerd with its own bridge and firewall rules). Tests run
# their own on loopback and in temp dirs, so stop the packaged ones where an
# init system runs them.
if command -v systemctl >/dev/null; then
  for unit in docker-registry docker.socket docker; do
    if systemctl is-active -q "$unit" 2>/dev/null; then
      systemctl stop "$unit" || true
    fi
  done
fi
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
"$GO" mod download
if [ "${1:-}" != build ]; then
  "$GO" tool -n staticcheck >/dev/null
fi
echo "install-deps: ok"
