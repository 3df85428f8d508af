#!/usr/bin/env bash
# runtime.sh - time `berth runtime run` against `runc run` (and `crun run`
# where crun can run here) of the same busybox bundle running `true`
# (create + start + wait + delete), interleaved (berth, runc, crun, berth,
# ...) so a drifting machine favours none. State roots are on /run (tmpfs),
# where runtimes keep them in real use.
#
#   sudo bash bench/runtime.sh              # N=30
#   N=100 RUNC=/usr/sbin/runc CRUN=/usr/bin/crun BERTH=./berth sudo -E bash bench/runtime.sh
#   SECCOMP=docker sudo -E bash bench/runtime.sh   # with Docker's default profile
#
# Prints min / median / mean / p90 in milliseconds for each runtime and the
# berth/runc ratio of medians. Needs root, busybox-static and runc.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

N=${N:-30}
WARMUP=${WARMUP:-3}
RUNC=${RUNC:-/usr/sbin/runc}
CRUN=${CRUN:-$(command -v crun || true)}
work=$(mktemp -d /tmp/berth-rtbench.XXXXXX)
state=$(mktemp -d /run/berth-rtbench.XXXXXX)
trap 'rm -rf --one-file-system "$work" "$state"' EXIT

if [ -z "${BERTH:-}" ]; then
  make -s build >/dev/null # berth with its embedded static init
  BERTH=$PWD/bin/berth
fi

# A busybox bundle: the static busybox and its applet links.
b=$work/bundle
mkdir -p "$b/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp /bin/busybox "$b/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$b/rootfs/bin/$a"; done
"$BERTH" runtime spec --bundle "$b"

# Not a terminal, run `true`.
python3 - "$b/config.json" <<'EOF'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["process"]["terminal"] = False
s["process"]["args"] = ["true"]
json.dump(s, open(p, "w"), indent=1)
EOF

# SECCOMP=docker: add Docker's default seccomp profile (as dockerd would) to
# both runtimes' spec: runc compiles it with libseccomp at every start, berth
# once per profile (cached under its state root).
if [ "${SECCOMP:-}" = docker ]; then
  mkdir -p "$work/seccompgen"
  cat >"$work/seccompgen/main.go" <<'EOF2'
package main

import (
	"encoding/json"
	"os"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func main() {
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		panic(err)
	}
	if s.Linux.Seccomp, err = seccomp.GetDefaultProfile(&s); err != nil {
		panic(err)
	}
	out, _ := json.MarshalIndent(&s, "", " ")
	if err := os.WriteFile(os.Args[1], out, 0o644); err != nil {
		panic(err)
	}
}
EOF2
  go run "$work/seccompgen/main.go" "$b/config.json"
fi

# one times a run with bash's own clock: `date` forked inside the timed
# span would add its start, about 2-3 ms here, to every sample.
one() { # runtime-argv... ; prints elapsed ns
  local t0 t1
  t0=${EPOCHREALTIME/./}
  "$@" >/dev/null 2>&1 </dev/null || { echo "run failed: $*" >&2; exit 1; }
  t1=${EPOCHREALTIME/./}
  echo $(((t1 - t0) * 1000))
}

: >"$work/berth.ns"
: >"$work/runc.ns"
: >"$work/crun.ns"
crun_note=""
if [ -n "$CRUN" ]; then
  if ! out=$("$CRUN" --root "$state/crun" run --bundle "$b" crun-probe 2>&1 </dev/null); then
    crun_note="crun $("$CRUN" --version | head -1 | awk '{print $3}'): cannot run here: ${out:0:120}"
    CRUN=""
  fi
fi
for i in $(seq $((WARMUP + N))); do
  tb=$(one "$BERTH" runtime --root "$state/berth" run --bundle "$b" "bb$i")
  tr=$(one "$RUNC" --root "$state/runc" run --bundle "$b" "rb$i")
  [ -n "$CRUN" ] && tc=$(one "$CRUN" --root "$state/crun" run --bundle "$b" "cb$i")
  if [ "$i" -gt "$WARMUP" ]; then
    echo "$tb" >>"$work/berth.ns"
    echo "$tr" >>"$work/runc.ns"
    [ -n "$CRUN" ] && echo "$tc" >>"$work/crun.ns"
  fi
done

stats() { # file -> "min median mean p90" in ms
  sort -n "$1" | awk '{a[NR]=$1; s+=$1} END {
    printf "%.1f %.1f %.1f %.1f", a[1]/1e6, a[int((NR+1)/2)]/1e6, s/NR/1e6, a[int(NR*0.9)]/1e6 }'
}
read -r bmin bmed bmean bp90 <<<"$(stats "$work/berth.ns")"
read -r rmin rmed rmean rp90 <<<"$(stats "$work/runc.ns")"
echo "runtime run of busybox \`true\`${SECCOMP:+ with the Docker default seccomp profile}, N=$N interleaved, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-22s | %7s | %7s | %7s | %7s |\n' runtime "min ms" "median" "mean" "p90"
printf '|%s|\n' "------------------------|---------|---------|---------|---------"
printf '| %-22s | %7s | %7s | %7s | %7s |\n' "berth runtime run" "$bmin" "$bmed" "$bmean" "$bp90"
printf '| %-22s | %7s | %7s | %7s | %7s |\n' "runc run ($("$RUNC" --version | head -1 | awk '{print $3}'))" "$rmin" "$rmed" "$rmean" "$rp90"
if [ -n "$CRUN" ]; then
  read -r cmin cmed cmean cp90 <<<"$(stats "$work/crun.ns")"
  printf '| %-22s | %7s | %7s | %7s | %7s |\n' "crun run ($("$CRUN" --version | head -1 | awk '{print $3}'))" "$cmin" "$cmed" "$cmean" "$cp90"
fi
[ -n "$crun_note" ] && echo "$crun_note"
awk -v b="$bmed" -v r="$rmed" 'BEGIN { printf "berth/runc (median): %.2fx\n", b / r }'
