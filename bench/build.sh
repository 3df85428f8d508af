#!/bin/bash
# bench/build.sh: `docker build` (legacy builder) of shared/bench's build —
# FROM busybox, 3 RUN, COPY of 50 MB — cold (--no-cache) and fully cached,
# against a private dockerd (Debian docker.io, its own roots and socket) and
# berth (through the docker CLI and through `berth build`), interleaved.
# Prints a Markdown section for BENCHMARKS.md.  N=10 by default.
set -euo pipefail
N=${N:-10}
WARMUP=${WARMUP:-1}
work=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
make -s build
berth="$PWD/bin/berth"
bsock="$work/bexec/berth.sock"
dsock="$work/dexec/docker.sock"
"$berth" daemon --data-root "$work/bdata" --exec-root "$work/bexec" -H "unix://$bsock" >"$work/berth.log" 2>&1 &
berth_pid=$!
dockerd --data-root "$work/ddata" --exec-root "$work/dexec" --pidfile "$work/docker.pid" -H "unix://$dsock" \
  --bridge none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
  kill "$berth_pid" "$dockerd_pid" 2>/dev/null || true
  wait "$berth_pid" "$dockerd_pid" 2>/dev/null || true
  for m in $(awk -v w="$work" '$5 ~ "^"w {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
for _ in $(seq 300); do
  "$berth" -H "unix://$bsock" version >/dev/null 2>&1 && DOCKER_HOST="unix://$dsock" docker version >/dev/null 2>&1 && break
  sleep 0.1
done
export DOCKER_BUILDKIT=0

# The same busybox image in both engines.
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin"
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list-full); do mkdir -p "$rootfs/$(dirname "$a")"; ln -f "$rootfs/bin/busybox" "$rootfs/$a" 2>/dev/null || true; done
tar -C "$rootfs" -c . | DOCKER_HOST="unix://$dsock" docker import - bb >/dev/null
DOCKER_HOST="unix://$dsock" docker save bb -o "$work/bb.tar"
DOCKER_HOST="unix://$bsock" docker load -i "$work/bb.tar" >/dev/null

ctx="$work/ctx-build"
mkdir -p "$ctx"
head -c $((50 * 1024 * 1024)) /dev/urandom >"$ctx/file50"
cat >"$ctx/Dockerfile" <<'DF'
FROM bb
RUN echo step1 > /step1
RUN mkdir -p /srv && echo step2 > /srv/step2
RUN i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i > /step3
COPY file50 /data/file50
DF

labels=("docker" "berth (docker CLI)" "berth (berth CLI)")
prefixes=("env DOCKER_HOST=unix://$dsock docker" "env DOCKER_HOST=unix://$bsock docker" "$berth -H unix://$bsock")
time_us() {
  local t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || return 1
  local t1=$EPOCHREALTIME
  echo $(( (${t1/./} - ${t0/./}) ))
}
stats() {
  sort -n "$1" | awk '{a[NR]=$1} END {
    if (NR == 0) { print "n/a"; exit }
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    printf "%.3f (%.3f–%.3f)", m/1e6, a[1]/1e6, a[NR]/1e6 }'
}
rows=()
# measure NAME PREP ARGS...: PREP (untimed) then ARGS, per engine, interleaved.
measure() {
  local name=$1 prep=$2; shift 2
  local i e n=${#prefixes[@]}
  for ((e = 0; e < n; e++)); do : >"$work/s.$e"; done
  for ((i = 0; i < WARMUP + N; i++)); do
    for ((e = 0; e < n; e++)); do
      # shellcheck disable=SC2086
      [ -n "$prep" ] && ${prefixes[$e]} $prep >/dev/null 2>&1 || true
      local us
      # shellcheck disable=SC2086
      if us=$(time_us ${prefixes[$e]} "$@"); then
        ((i >= WARMUP)) && echo "$us" >>"$work/s.$e"
      fi
    done
  done
  local row="| $name (s) |"
  for ((e = 0; e < n; e++)); do row+=" $(stats "$work/s.$e") |"; done
  rows+=("$row")
}
measure "build, no cache (3 RUN + COPY 50 MB)" "" build --no-cache -t bench/build:test "$ctx"
for p in "${prefixes[@]}"; do $p build -t bench/build:test "$ctx" >/dev/null 2>&1; done
measure "build, fully cached rebuild" "" build -t bench/build:test "$ctx"

echo "## $(date -u '+%Y-%m-%d %H:%M UTC') — bench/build.sh (N=$N)"
echo
echo "docker $(DOCKER_HOST="unix://$dsock" docker version --format '{{.Server.Version}}') (Debian docker.io, legacy builder, private dockerd) vs berth $("$berth" -H "unix://$bsock" version --format '{{.Server.Version}}'); $(nproc) cores, kernel $(uname -r)."
echo "Median (min–max) over N runs after $WARMUP warm-up run, engines interleaved. \`DOCKER_BUILDKIT=0\`."
echo
echo "| metric | ${labels[0]} | ${labels[1]} | ${labels[2]} |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
