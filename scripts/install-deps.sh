#!/usr/bin/env bash
# Installs everything berth's tests need on Debian 12, and nothing twice:
# Debian packages through apt (only when one is missing), Go tools through
# the module proxy (pinned in go.mod's tool block).
set -euo pipefail

packages=(
  busybox-static   # test images without a network
  libseccomp-dev   # the runtime's seccomp filters
  nftables         # networking rules
  docker-registry  # a real registry for pull/push tests
  iproute2         # network namespaces for network tests
  tmux             # interactive (-it) tests
)
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
# Debian's docker-registry starts a service on :5000 with auth; tests run
# their own on loopback, so stop the packaged one where an init system runs it.
if command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
"$GO" mod download
"$GO" tool -n staticcheck >/dev/null
echo "install-deps: ok"
