#!/usr/bin/env bash
# The benchmark suite: builds the optimised binary, generates the data sets and prints one
# table of figures beside their limits. Pass `--peer URL` to measure another server too.
# Takes about 6 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
exec cargo bench --bench suite -- "$@"
