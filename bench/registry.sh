#!/usr/bin/env bash
# registry.sh - pull and push against a loopback registry, berth side by
# side with podman and Docker in one run; appends a dated table to
# BENCHMARKS.md.
#
#   bash bench/registry.sh            # N=3 runs per metric
#
# The image is issue 4's: busybox plus 4 layers of 50 MB of random data
# (200 MB), made by berth and pushed to Debian's docker-registry on
# 127.0.0.1. Cold pull: the image and its blobs are removed first.
# Incremental pull: the same image plus one small layer, with the 200 MB
# already present. Push: to a new repository of the same registry (blobs
# mounted), and a full upload: each tool pushes the image it pulled itself
# to a fresh, empty registry. Every layer is gzip'd OCI (the base is made
# with berth import of a gzip'd tar), which podman 4.3.1 accepts.
# podman and docker.io come from Debian (installed here when missing, never
# in CI); Docker is measured through the system dockerd.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
N=${N:-3}
OUT=${OUT:-BENCHMARKS.md}
work=$(mktemp -d /tmp/berth-regbench.XXXXXX)
say() { printf '[registry %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
for p in podman docker.io; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null
done
docker_started=0
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  nohup dockerd >"$work/dockerd.log" 2>&1 &
  docker_started=1
  for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi

make -s build
berth="$PWD/bin/berth"
sock="$work/exec/berth.sock"
"$berth" daemon --data-root "$work/data" --exec-root "$work/exec" -H "unix://$sock" >"$work/berth.log" 2>&1 &
berth_pid=$!
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
mkdir -p "$work/reg"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n' "$work/reg" "$reg" >"$work/reg.yml"
/usr/bin/docker-registry serve "$work/reg.yml" >"$work/reg.log" 2>&1 &
reg_pid=$!

# freshreg: starts an empty docker-registry; sets fresh (host:port) and
# fresh_pid.
freshreg() {
  local p dir
  p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d "$work/fresh.XXXXXX")
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$dir/reg" "$p" >"$dir/reg.yml"
  /usr/bin/docker-registry serve "$dir/reg.yml" >"$dir/reg.log" 2>&1 &
  fresh_pid=$!
  fresh=127.0.0.1:$p
  for _ in $(seq 200); do curl -sf "http://$fresh/v2/" >/dev/null && break; sleep 0.05; done
}
endreg() { kill "$fresh_pid" 2>/dev/null || true; wait "$fresh_pid" 2>/dev/null || true; fresh_pid=; }
fresh_pid=
cleanup() {
  [ -z "$fresh_pid" ] || kill "$fresh_pid" 2>/dev/null || true
  "$berth" -H "unix://$sock" ps -aq 2>/dev/null | xargs -r "$berth" -H "unix://$sock" rm -f >/dev/null 2>&1 || true
  kill "$berth_pid" "$reg_pid" 2>/dev/null || true
  wait "$berth_pid" 2>/dev/null || true
  if [ -f "$work/exec/monitor.pid" ]; then kill "$(cat "$work/exec/monitor.pid")" 2>/dev/null || true; fi
  podman rmi -f "$reg/bench/big:1" "$reg/bench/big:2" "$reg/bench/podman:1" >/dev/null 2>&1 || true
  docker rmi -f "$reg/bench/big:1" "$reg/bench/big:2" "$reg/bench/docker:1" >/dev/null 2>&1 || true
  if [ "$docker_started" = 1 ]; then pkill -x dockerd || true; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
for _ in $(seq 200); do "$berth" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
B() { "$berth" -H "unix://$sock" "$@"; }

say "making the 200 MB, 4-layer image"
D() { DOCKER_HOST="unix://$sock" docker "$@"; }
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" && cp /bin/busybox "$rootfs/bin/busybox"
for a in sh head cat true; do ln -f "$rootfs/bin/busybox" "$rootfs/bin/$a"; done
tar -C "$rootfs" -c . | gzip | B import - regbench-base >/dev/null
img=regbench-base
for i in 1 2 3 4; do
  B run --name "l$i" "$img" sh -c "head -c 52428800 /dev/urandom > /layer$i" >/dev/null
  D commit "l$i" "bench-l$i" >/dev/null
  B rm "l$i" >/dev/null
  img=bench-l$i
done
B tag "$img" "$reg/bench/big:1"
B run --name l5 "$img" sh -c "echo small > /small" >/dev/null
D commit l5 "$reg/bench/big:2" >/dev/null
B rm l5 >/dev/null
B push "$reg/bench/big:1" >/dev/null
B push "$reg/bench/big:2" >/dev/null

ms() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1 || return 1; local t1=$EPOCHREALTIME; echo $(((${t1/./} - ${t0/./}) / 1000)); }
# timed FILE CMD...: appends CMD's time in ms to FILE; a failure is said,
# with CMD's output, and leaves no sample.
timed() {
  local f=$1 t0 t1 out; shift
  t0=$EPOCHREALTIME
  if ! out=$("$@" 2>&1); then say "failed: $* ($(echo "$out" | tail -1))"; return 0; fi
  t1=$EPOCHREALTIME
  echo $(((${t1/./} - ${t0/./}) / 1000)) >>"$f"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} printf "%.2f", ((NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2)/1000}'; }
: >"$work/b.cold"; : >"$work/p.cold"; : >"$work/d.cold"; : >"$work/b.inc"; : >"$work/p.inc"; : >"$work/d.inc"
: >"$work/b.push"; : >"$work/p.push"; : >"$work/d.push"; : >"$work/b.full"; : >"$work/p.full"; : >"$work/d.full"
for ((i = 0; i < N; i++)); do
  say "round $((i + 1))/$N"
  # cold: nothing of the image present
  D rmi -f "$reg/bench/big:1" "$reg/bench/big:2" "$reg/bench/berth-push:1" $(B images -q) >/dev/null 2>&1 || true
  timed "$work/b.cold" B pull "$reg/bench/big:1"
  podman rmi -af >/dev/null 2>&1 || true
  timed "$work/p.cold" podman pull --tls-verify=false "$reg/bench/big:1"
  docker rmi -f "$reg/bench/big:1" "$reg/bench/big:2" >/dev/null 2>&1 || true
  docker image prune -af >/dev/null 2>&1 || true
  timed "$work/d.cold" docker pull "$reg/bench/big:1"
  # incremental: one small layer on top of what is present
  timed "$work/b.inc" B pull "$reg/bench/big:2"
  timed "$work/p.inc" podman pull --tls-verify=false "$reg/bench/big:2"
  timed "$work/d.inc" docker pull "$reg/bench/big:2"
  # push to a fresh repository of the same registry
  B tag "$reg/bench/big:1" "$reg/bench/berth$i:1"
  timed "$work/b.push" B push "$reg/bench/berth$i:1"
  podman tag "$reg/bench/big:1" "$reg/bench/podman$i:1"
  timed "$work/p.push" podman push --tls-verify=false "$reg/bench/podman$i:1"
  docker tag "$reg/bench/big:1" "$reg/bench/docker$i:1"
  timed "$work/d.push" docker push "$reg/bench/docker$i:1"
  # full upload of the image each pulled itself, to an empty registry
  freshreg; B tag "$reg/bench/big:1" "$fresh/bench/big:1"
  timed "$work/b.full" B push "$fresh/bench/big:1"
  B rmi "$fresh/bench/big:1" >/dev/null; endreg
  freshreg; podman tag "$reg/bench/big:1" "$fresh/bench/big:1"
  timed "$work/p.full" podman push --tls-verify=false "$fresh/bench/big:1"
  podman rmi "$fresh/bench/big:1" >/dev/null 2>&1 || true; endreg
  freshreg; docker tag "$reg/bench/big:1" "$fresh/bench/big:1"
  timed "$work/d.full" docker push "$fresh/bench/big:1"
  docker rmi "$fresh/bench/big:1" >/dev/null 2>&1 || true; endreg
done
{
  echo
  echo "## $(date -u +%Y-%m-%d\ %H:%M) UTC — bench/registry.sh (N=$N)"
  echo
  echo "A 200 MB image (busybox + 4 layers of 50 MB of random data) on Debian's docker-registry at 127.0.0.1; docker $(docker version --format '{{.Server.Version}}'), $(podman --version), berth $(B version --format '{{.Server.Version}}'). Median of N runs, tools interleaved in each round, seconds."
  echo
  echo "| metric | docker | podman | berth (berth CLI) |"
  echo "|---|---|---|---|"
  echo "| cold pull (s) | $(median <"$work/d.cold") | $(median <"$work/p.cold") | $(median <"$work/b.cold") |"
  echo "| incremental pull, one new small layer (s) | $(median <"$work/d.inc") | $(median <"$work/p.inc") | $(median <"$work/b.inc") |"
  echo "| push to a new repository of the same registry (blobs mounted) (s) | $(median <"$work/d.push") | $(median <"$work/p.push") | $(median <"$work/b.push") |"
  echo "| push of all 200 MB to a fresh, empty registry (s) | $(median <"$work/d.full") | $(median <"$work/p.full") | $(median <"$work/b.full") |"
} | tee -a "$OUT"
