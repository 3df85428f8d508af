#!/usr/bin/env bash
# Starts `berth daemon` in the background unless one already answers, and
# waits until it does. Logs go to /var/log/berth.log.
set -euo pipefail
berth=${1:-berth}
if "$berth" version >/dev/null 2>&1; then
  exit 0
fi
log=/var/log/berth.log
nohup "$berth" daemon >>"$log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 200); do
  if "$berth" version >/dev/null 2>&1; then
    echo "berth daemon started (pid $pid, log $log)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "berth daemon exited; the end of $log says why:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
  sleep 0.05
done
echo "berth daemon did not answer within 10s; see $log" >&2
exit 1
