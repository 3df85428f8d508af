#!/usr/bin/env bash
# compare.sh - measure berth and Docker side by side in one run, and append
# a dated table to BENCHMARKS.md.
#
#   bash bench/compare.sh            # N=20 runs per metric
#   N=50 SECTIONS=api,memory bash bench/compare.sh
#
# Both engines are driven by the SAME client, the docker CLI, so the figures
# compare the daemons; `berth` rows driven by berth's own CLI are listed too.
# Cheap metrics alternate engine by engine within each iteration (A B A B),
# so a drifting machine favours neither. A metric berth cannot do yet is
# reported as "n/a" rather than left out.
#
# Docker comes from Debian's docker.io, installed here when missing (never in
# CI). berth runs on its own temporary data and exec roots, so a berth daemon
# already running on the machine is not touched.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

N=${N:-20}
WARMUP=${WARMUP:-2}
SECTIONS=${SECTIONS:-api,run,memory}
OUT=${OUT:-BENCHMARKS.md}
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
say() { printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- Docker -----------------------------------------------------------------
if ! command -v dockerd >/dev/null; then
  say "installing docker.io from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
fi
docker_started=0
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  say "starting dockerd"
  nohup dockerd >"$work/dockerd.log" 2>&1 &
  docker_started=1
  for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
docker_version=$(docker version --format '{{.Server.Version}}')

# --- berth ------------------------------------------------------------------
make -s build
berth="$PWD/bin/berth"
sock="$work/exec/berth.sock"
"$berth" daemon --data-root "$work/data" --exec-root "$work/exec" -H "unix://$sock" >"$work/berth.log" 2>&1 &
berth_pid=$!
cleanup() {
  kill "$berth_pid" 2>/dev/null || true
  wait "$berth_pid" 2>/dev/null || true
  if [ "$docker_started" = 1 ]; then pkill -x dockerd || true; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
for _ in $(seq 200); do "$berth" -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.05; done
berth_version=$("$berth" -H "unix://$sock" version --format '{{.Server.Version}}')

# Engines: label and command prefix.
labels=("docker" "berth (docker CLI)" "berth (berth CLI)")
prefixes=("docker" "env DOCKER_HOST=unix://$sock docker" "$berth -H unix://$sock")

# --- measurement helpers ----------------------------------------------------
# time_us CMD...: wall time of one run in microseconds; fails if CMD fails.
time_us() {
  local t0=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || return 1
  local t1=$EPOCHREALTIME
  echo $(( (${t1/./} - ${t0/./}) ))
}
# stats FILE: "median (min–max)" in ms of the samples in FILE.
stats() {
  sort -n "$1" | awk '{a[NR]=$1} END {
    if (NR == 0) { print "n/a"; exit }
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
    printf "%.1f (%.1f–%.1f)", m/1000, a[1]/1000, a[NR]/1000 }'
}
rows=()
# measure NAME ARGS...: run "PREFIX ARGS" for every engine, interleaved.
measure() {
  local name=$1; shift
  local i e n=${#prefixes[@]}
  for ((e = 0; e < n; e++)); do : >"$work/s.$e"; done
  for ((i = 0; i < WARMUP + N; i++)); do
    for ((e = 0; e < n; e++)); do
      local us
      # shellcheck disable=SC2086
      if us=$(time_us ${prefixes[$e]} "$@"); then
        ((i >= WARMUP)) && echo "$us" >>"$work/s.$e"
      fi
    done
  done
  local row="| $name (ms) |"
  for ((e = 0; e < n; e++)); do row+=" $(stats "$work/s.$e") |"; done
  rows+=("$row")
}
# rss_kib PID...: summed VmRSS of the processes.
rss_kib() {
  local total=0 p
  for p in "$@"; do
    local v
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

IFS=, read -ra sections <<<"$SECTIONS"
for s in "${sections[@]}"; do
  case $s in
  api)
    say "api round trips"
    measure '`version`' version --format '{{.Server.Version}}'
    measure '`ps -a` (no containers)' ps -a
    ;;
  run)
    if "$berth" -H "unix://$sock" run --rm hello >/dev/null 2>&1; then
      say "run --rm"
      # TODO(engine issue): import the same busybox image into both engines and time run --rm bb true.
      :
    else
      rows+=("| \`run --rm … true\` (ms) | n/a: not measured | n/a: berth cannot run containers yet | n/a |")
    fi
    ;;
  memory)
    say "idle engine memory"
    d=$(rss_kib $(pgrep -x dockerd) $(pgrep -x containerd))
    b=$(rss_kib "$berth_pid")
    rows+=("| idle engine RSS (MiB) | $(awk -v k="$d" 'BEGIN{printf "%.1f", k/1024}') (dockerd + containerd) | $(awk -v k="$b" 'BEGIN{printf "%.1f", k/1024}') (berth daemon) | same process |")
    ;;
  *) say "unknown section $s" ;;
  esac
done

{
  echo
  echo "## $(date -u +%Y-%m-%d\ %H:%M) UTC — bench/compare.sh (N=$N, SECTIONS=$SECTIONS)"
  echo
  echo "docker $docker_version (Debian docker.io) vs berth $berth_version; $(nproc) cores, kernel $(uname -r)."
  echo "Median (min–max) over N runs after $WARMUP warm-up runs, engines interleaved in each iteration."
  echo
  echo "| metric | ${labels[0]} | ${labels[1]} | ${labels[2]} |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$OUT"
