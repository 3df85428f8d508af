#!/usr/bin/env bash
# Runs the third-party conformance suites (../shared/conformance) for the
# parts of berth that exist. Each suite prints "N passed, M failed".
set -euo pipefail
berth=$1
shared=$(cd "$(dirname "$0")/../.." && pwd)/shared/conformance
ran=0
# The OCI runtime-tools suite runs against `berth runtime` once it exists.
if "$berth" runtime --help >/dev/null 2>&1 && [ -d "$shared" ]; then
  bash "$shared/run-runtime-tools.sh" "$berth-runc"
  ran=1
fi
if [ "$ran" = 0 ]; then
  echo "conformance: no third-party suite applies yet (the runtime-tools suite runs once \`berth runtime\` exists)"
fi
