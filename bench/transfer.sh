#!/usr/bin/env bash
# Measures `roster import` and `roster export` of a large users file against a fresh
# database: three imports (the first into an empty database, then --replace) and three
# exports, each under /usr/bin/time -v (wall time and peak resident memory).
#
#   python3 bench/users_file.py 1000000 /tmp/users-1m.json
#   bench/transfer.sh target/release/roster /tmp/users-1m.json [postgres://postgres@127.0.0.1:5432]
set -euo pipefail
binary=$1 file=$2 server=${3:-postgres://postgres@127.0.0.1:5432}
database=roster_transfer_bench_$$
out=$(mktemp -d)
psql "$server/postgres" -qc "CREATE DATABASE $database"
trap 'psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"; rm -rf "$out"' EXIT
figures() { grep -E "Elapsed|Maximum resident" "$1" | sed 's/^\s*//' | tr '\n' ' '; echo; }
for run in 1 2 3; do
  /usr/bin/time -v "$binary" import --replace "$file" --database-url "$server/$database" 2>"$out/import" >/dev/null
  echo "import $run: $(figures "$out/import")"
done
for run in 1 2 3; do
  /usr/bin/time -v "$binary" export "$out/export.json" --database-url "$server/$database" 2>"$out/export" >/dev/null
  echo "export $run: $(figures "$out/export")"
done
