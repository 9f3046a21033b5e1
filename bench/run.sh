#!/usr/bin/env bash
# The benchmark suite: builds the optimised binary, generates the data sets and prints one
# table of figures beside their limits. Pass `--peer URL` to measure another server too.
# Takes about 6 minutes on a 2-core machine.
#
# `bench/run.sh --scale [--sizes 10000,100000] [--huge] [--baseline PATH] [--runs N]` runs the
# scale curve instead (benches/scale.rs; `--help` lists its options): 10k to 1M users, file
# store and PostgreSQL, a Markdown table and target/bench-data/scale.png. About 40 minutes
# with the three default sizes and a baseline.
#
# `bench/run.sh --subscribers [BINARY ...] [--sockets 255] [--per-socket 100] [--creates 50]`
# measures live subscriptions instead (bench/subscribers.py, by default on the release
# build): the server's CPU per create and its memory per subscriber, with N sockets x M
# `userEvents` subscriptions; give two binaries to compare builds in one run.
#
# `bench/run.sh --answers [--clients 1,8,32,64,128] [--flags "..."]` runs the answer-memory
# curve instead (bench/answer_memory.py): 100,000 users, 1 to 128 clients each fetching the
# whole list, peak memory and /health latency per client count. About 5 minutes.
#
# `bench/run.sh --read-instructions [BINARY ...] [--levels info,warn]` counts the instructions
# a cached read costs under valgrind's callgrind (bench/read_instructions.py), which the
# machine's load does not move: what a log line costs shows to a few hundred instructions.
# About a minute per binary; the data set comes from `--reads`.
#
# `bench/run.sh --reads [--baseline PATH] [--rounds N] [--seconds S]` runs only the read
# bench (benches/reads.rs): `allUsers(limit: 10)` at 10k users against Roster at
# RUST_LOG=info and warn, a bare axum route (benches/bare_route.rs) and a minimal
# async-graphql server (benches/minimal_graphql.rs) in alternating rounds, and a fuzzy
# search; medians and their ratios. `--baseline` adds another roster build (say, main's)
# to the same rounds. About 2 minutes with the defaults, 3 with a baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--answers" ]; then
  shift
  cargo build --release --locked
  exec python3 bench/answer_memory.py "$@"
fi
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}
if [ "${1:-}" = "--subscribers" ]; then
  shift
  cargo build --release --locked --bin roster
  exec python3 bench/subscribers.py "$@"
fi
if [ "${1:-}" = "--read-instructions" ]; then
  shift
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "installing valgrind from Debian's packages" >&2
    as_root apt-get install -y valgrind >/dev/null
  fi
  cargo build --release --locked --bin roster
  exec python3 bench/read_instructions.py "$@"
fi
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk from Debian's packages" >&2
  as_root apt-get install -y wrk >/dev/null
fi
if [ "${1:-}" = "--scale" ]; then
  shift
  # The plot's text needs a font file (plotters reads it itself).
  if [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    echo "installing fonts-dejavu-core from Debian's packages" >&2
    as_root apt-get install -y fonts-dejavu-core >/dev/null \
      || { as_root apt-get update -qq && as_root apt-get install -y fonts-dejavu-core >/dev/null; }
  fi
  exec cargo bench --bench scale -- "$@"
fi
if [ "${1:-}" = "--reads" ]; then
  shift
  # The reference servers are bench targets too: build them and find their executables.
  built=$(cargo bench --locked --no-run --bench bare_route --bench minimal_graphql \
    --message-format=json 2>/dev/null | grep -o '"executable":"[^"]*"' | cut -d'"' -f4)
  bare=$(echo "$built" | grep '/bare_route-')
  minimal=$(echo "$built" | grep '/minimal_graphql-')
  exec cargo bench --locked --bench reads -- --bare "$bare" --minimal "$minimal" "$@"
fi
exec cargo bench --bench suite -- "$@"
