#!/usr/bin/env bash
# compare.sh - measure berth and Docker side by side in one run, and append
# a dated table to BENCHMARKS.md.
#
#   bash bench/compare.sh            # N=20 runs per metric
#   N=50 SECTIONS=api,memory bash bench/compare.sh
#   SECTIONS=many MANY=1000 bash bench/compare.sh   # berth with 1000 running
#   SETTLE=0.3 SECTIONS=run bash bench/compare.sh     # quiet before each run
#
# Both engines are driven by the SAME client, the docker CLI, so the figures
# compare the daemons; `berth` rows driven by berth's own CLI are listed too.
# Cheap metrics alternate engine by engine within each iteration (A B A B),
# so a drifting machine favours neither. A metric berth cannot do yet is
# reported as "n/a" rather than left out.
#
# An engine's work does not end when its CLI returns: Docker tears a
# container's network namespace and veth down after `run --rm` has returned,
# and the kernel finishes such teardowns in its own workers. The next
# engine's run pays for that. SETTLE (seconds, default 0) sleeps before each
# timed run so that every run starts on a quiet machine; the table's header
# says which was used.
#
# Docker comes from Debian's docker.io, installed here when missing (never in
# CI). berth runs on its own temporary data and exec roots, so a berth daemon
# already running on the machine is not touched.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

N=${N:-20}
WARMUP=${WARMUP:-2}
SETTLE=${SETTLE:-0}
SECTIONS=${SECTIONS:-api,run,detach,net,memory}
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
  # Containers first (they hold mounts under the exec root), then the
  # daemon and its monitor.
  "$berth" -H "unix://$sock" ps -aq 2>/dev/null | xargs -r -n 50 "$berth" -H "unix://$sock" rm -f >/dev/null 2>&1 || true
  kill "$berth_pid" 2>/dev/null || true
  wait "$berth_pid" 2>/dev/null || true
  if [ "$docker_started" = 1 ]; then pkill -x dockerd || true; fi
  if [ -f "$work/exec/monitor.pid" ]; then kill "$(cat "$work/exec/monitor.pid")" 2>/dev/null || true; fi
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
      if [ "$SETTLE" != 0 ]; then sleep "$SETTLE"; fi
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
# run_pair: `run --rm --network none bb true` and `run --rm bb true`, both in
# each iteration for every engine, so the bridge's added cost is a median of
# paired differences (a drift between two separately measured rows would
# show up as a cost).
run_pair() {
  local i e n=${#prefixes[@]} a b
  for ((e = 0; e < n; e++)); do : >"$work/none.$e"; : >"$work/bridge.$e"; : >"$work/diff.$e"; done
  for ((i = 0; i < WARMUP + N; i++)); do
    for ((e = 0; e < n; e++)); do
      if [ "$SETTLE" != 0 ]; then sleep "$SETTLE"; fi
      # shellcheck disable=SC2086
      a=$(time_us ${prefixes[$e]} run --rm --network none bb true) || continue
      if [ "$SETTLE" != 0 ]; then sleep "$SETTLE"; fi
      # shellcheck disable=SC2086
      b=$(time_us ${prefixes[$e]} run --rm bb true) || continue
      if ((i >= WARMUP)); then
        echo "$a" >>"$work/none.$e"
        echo "$b" >>"$work/bridge.$e"
        echo $((b - a)) >>"$work/diff.$e"
      fi
    done
  done
  local r1='| `run --rm --network none bb true` (ms) |' r2='| `run --rm bb true` (default bridge) (ms) |'
  local r3='| the default bridge'"'"'s added cost: median (min–max) of the paired differences (ms) |'
  for ((e = 0; e < n; e++)); do
    r1+=" $(stats "$work/none.$e") |"
    r2+=" $(stats "$work/bridge.$e") |"
    r3+=" $(stats "$work/diff.$e") |"
  done
  rows+=("$r1" "$r2" "$r3")
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

# image_ready imports the same busybox rootfs into Docker as bb (docker
# import), saves it, and loads that archive into berth through the docker
# CLI: both engines then run the identical image.
image_state=""
image_ready() {
  if [ -z "$image_state" ]; then
    image_state=no
    rootfs="$work/rootfs"
    mkdir -p "$rootfs"
    /bin/busybox --install -s "$rootfs" 2>/dev/null || true
    mkdir -p "$rootfs/bin" && cp /bin/busybox "$rootfs/bin/busybox"
    for a in $(/bin/busybox --list-full); do mkdir -p "$rootfs/$(dirname "$a")"; ln -f "$rootfs/bin/busybox" "$rootfs/$a" 2>/dev/null; done
    tar -C "$rootfs" -c . | docker import - bb >/dev/null
    docker save bb -o "$work/bb.tar"
    if DOCKER_HOST="unix://$sock" docker load -i "$work/bb.tar" >/dev/null 2>&1; then image_state=yes; fi
  fi
  [ "$image_state" = yes ]
}

# pss_kib PID...: summed Pss of the processes (smaps_rollup).
pss_kib() {
  local total=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# spare_pids: berth's spare container init (docs/decisions/0094), which
# lives for 10 s after each create: one process, however many containers
# run, so it gets its own row rather than a share of the per-container one.
spare_pids() { pgrep -x -f "berth init"; }

# engine_pids LABEL: the engine-side processes of an engine.
engine_pids() {
  case $1 in
  docker) pgrep -x 'dockerd|containerd|containerd-shim-runc-v2|docker-proxy' ;;
  *) echo "$berth_pid"; pgrep -f "^$berth monitor" ;;
  esac
}

# detach_section: start 50 detached containers per engine and CLI, one at a
# time: the batch time, engine memory per running container, and ps with
# them running; then remove them. The memory is PSS at rest, before the
# batch and after it, each after ${REST:-20} s with no API call: berth's
# daemon and monitor hand their heap back 10-15 s after the last call
# (internal/idle), so a snapshot taken
# at a different moment of that cycle would count the burst's garbage, or
# the release, as the containers' cost. berth's spare init, one process
# that lives 10 s after a create, is measured 2 s after the batch.
detach_section() {
  local e n=50 label prefix t0 t1 before after i
  for e in 0 1 2; do
    label=${labels[$e]} prefix=${prefixes[$e]}
    sleep "${REST:-20}"
    before=$(pss_kib $(engine_pids "${label%% *}"))
    t0=$EPOCHREALTIME
    for ((i = 0; i < n; i++)); do
      # shellcheck disable=SC2086
      $prefix run -d --network none bb sleep 3600 >/dev/null || break
    done
    t1=$EPOCHREALTIME
    sleep 2
    if [ "$e" = 1 ]; then spare_kib=$(pss_kib $(spare_pids)); fi
    sleep "${REST:-20}"
    after=$(pss_kib $(engine_pids "${label%% *}"))
    detach_s[$e]=$(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN{printf "%.2f", (b-a)/1e6}')
    pss_per[$e]=$(( (after - before) / n ))
    : >"$work/ps.$e"
    for ((i = 0; i < N; i++)); do
      # shellcheck disable=SC2086
      time_us $prefix ps >>"$work/ps.$e" || true
    done
    ps_ms[$e]=$(stats "$work/ps.$e")
    # shellcheck disable=SC2086
    $prefix rm -f $($prefix ps -aq) >/dev/null 2>&1 || true
  done
  rows+=("| start 50 detached, whole batch (s) | ${detach_s[0]} | ${detach_s[1]} | ${detach_s[2]} |")
  rows+=("| engine PSS per running container (KiB) | ${pss_per[0]} | ${pss_per[1]} | ${pss_per[2]} |")
  rows+=("| berth's spare init, once per engine, for 10 s after a create (KiB PSS) | n/a | ${spare_kib:-0} | (same daemon) |")
  rows+=("| \`ps\` with 50 running (ms) | ${ps_ms[0]} | ${ps_ms[1]} | ${ps_ms[2]} |")
}

# many_section: MANY (default 1000) busybox containers running at once under
# berth, started 8 at a time by berth's CLI: the batch time, engine PSS per
# running container, and `ps` with all of them running (berth CLI and docker
# CLI). Docker is not run to 1000 here: its containerd-shim per container
# (≈ 10 MiB RSS each) would need several GiB; its 50-container figures above
# are the comparison.
many_section() {
  local n=${MANY:-1000} before after t0 t1 label=${labels[1]}
  before=$(pss_kib $(engine_pids berth))
  t0=$EPOCHREALTIME
  local netflag=""
  if $berth run --help 2>&1 | grep -q -- '--network'; then netflag="--network none"; fi
  # shellcheck disable=SC2086
  seq "$n" | xargs -P 8 -I{} $berth -H "unix://$sock" run -d $netflag bb sleep 3600 >/dev/null || true
  t1=$EPOCHREALTIME
  sleep 2
  after=$(pss_kib $(engine_pids berth))
  local running
  running=$($berth -H "unix://$sock" ps -q | wc -l)
  : >"$work/many.b"; : >"$work/many.d"
  for ((i = 0; i < N; i++)); do
    time_us $berth -H "unix://$sock" ps >>"$work/many.b" || true
    time_us env DOCKER_HOST="unix://$sock" docker ps >>"$work/many.d" || true
  done
  rows+=("| start $n detached, 8 at a time (s) | n/a: not run to $n | (same daemon) | $(awk -v a="${t0/./}" -v b="${t1/./}" 'BEGIN{printf "%.2f", (b-a)/1e6}') ($running running) |")
  rows+=("| engine PSS per running container, $n running (KiB) | n/a | (same daemon) | $(( (after - before) / n )) |")
  rows+=("| \`ps\` with $n running (ms) | n/a | $(stats "$work/many.d") | $(stats "$work/many.b") |")
  $berth -H "unix://$sock" ps -aq | xargs -r -n 50 $berth -H "unix://$sock" rm -f >/dev/null 2>&1 || true
}

# net_section: MiB/s of NET_MIB (default 1024) MiB sent from the host's
# 127.0.0.1 to a container's published port (a persistent busybox nc
# server handing each connection to dd into /dev/null; dd writes 1 MiB
# blocks on the client side),
# NET_RUNS times per engine. Docker goes through its docker-proxy; berth
# through DNAT in the kernel.
net_section() {
  local e mib=${NET_MIB:-1024} runs=${NET_RUNS:-5} port prefix i t0 t1
  for e in 0 1; do
    prefix=${prefixes[$e]} port=$((18900 + e))
    # shellcheck disable=SC2086
    $prefix rm -f bench-sink >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    $prefix run -d --name bench-sink -p "127.0.0.1:$port:5000" bb nc -ll -p 5000 -e dd of=/dev/null bs=65536 >/dev/null
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    : >"$work/net.$e"
    for ((i = 0; i < runs; i++)); do
      t0=$EPOCHREALTIME
      dd if=/dev/zero bs=1M count="$mib" 2>/dev/null >"/dev/tcp/127.0.0.1/$port" || break
      t1=$EPOCHREALTIME
      awk -v a="${t0/./}" -v b="${t1/./}" -v m="$mib" 'BEGIN{printf "%d\n", m / ((b-a)/1e6) * 1000}' >>"$work/net.$e"
      sleep 0.2
    done
    # shellcheck disable=SC2086
    $prefix rm -f bench-sink >/dev/null 2>&1 || true
  done
  # stats prints thousandths as units: the samples are MiB/s × 1000.
  rows+=("| published port, 127.0.0.1 → container, ${mib} MiB (MiB/s; median (min–max) of $runs) | $(stats "$work/net.0") | $(stats "$work/net.1") | (same daemon) |")
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
    if ! image_ready; then
      rows+=("| \`run --rm bb true\` (ms) | n/a | n/a: berth could not load the image | n/a |")
    else
      say "run --rm"
      run_pair
    fi
    ;;
  detach)
    if image_ready; then
      say "50 detached containers"
      detach_section
    fi
    ;;
  many)
    if image_ready; then
      say "${MANY:-1000} containers at once"
      many_section
    fi
    ;;
  net)
    if image_ready; then
      say "throughput through a published port"
      net_section
    fi
    ;;
  memory)
    # Idle means idle: both engines get the same ${QUIET:-15} s with no
    # call, long enough for berth to hand a burst's heap back (engine/idle.go)
    # and for Go's scavenger in dockerd and containerd to run too.
    say "idle engine memory (after ${QUIET:-15} s quiet)"
    sleep "${QUIET:-15}"
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
  if [ "$SETTLE" != 0 ]; then echo "SETTLE=$SETTLE: $SETTLE s of quiet before each timed run."; fi
  echo
  echo "| metric | ${labels[0]} | ${labels[1]} | ${labels[2]} |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee -a "$OUT"
