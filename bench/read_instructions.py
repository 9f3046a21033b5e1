#!/usr/bin/env python3
"""Instructions per read: what a cached `allUsers(limit: 10)` costs a Roster binary, counted.

Usage: bench/read_instructions.py [BINARY ...] [--levels info,warn] [--requests N]
(default: target/release/roster at RUST_LOG=info and warn, 2,000 requests).

Each binary runs under valgrind's callgrind over a copy of target/bench-data/users-10000.json
(the read bench's data set; `bench/run.sh --reads` writes it). 300 reads warm it up (the
answer cache, the allocator), the counters are zeroed, then N reads go one after another on
one keep-alive connection, and the instructions the whole process ran meanwhile (every
thread: the request's, the log writer's) are divided by N. Unlike requests per second, the
count does not move with whatever else the machine runs, so a few per cent show, such as
what a log line costs (info against warn). Traffic goes to 127.0.0.1 only; every wait is
bounded. Needs valgrind (Debian's package).
"""

import argparse
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

QUERY = json.dumps({"query": "{ allUsers(limit: 10) { id name email } }"})
DATA = "target/bench-data/users-10000.json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reads(port, n):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(n):
        connection.request("POST", "/graphql", QUERY, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 200 or b'"allUsers"' not in body:
            raise RuntimeError(f"unexpected answer {answer.status}: {body[:200]!r}")
    connection.close()


def count(binary, level, requests):
    folder = tempfile.mkdtemp()
    try:
        data = os.path.join(folder, "users.json")
        shutil.copy(DATA, data)
        out = os.path.join(folder, "callgrind.out")
        port = free_port()
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
             "--data-file", data, "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": level})
        deadline = time.time() + 120
        while True:
            try:
                reads(port, 1)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{binary} did not start under valgrind")
                time.sleep(0.2)
        reads(port, 300)
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        reads(port, requests)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        total = 0
        for path in glob.glob(out + "*"):
            with open(path) as f:
                for line in f:
                    if line.startswith("summary:") or line.startswith("totals:"):
                        total += int(line.split()[1])
                        break
        return total / requests
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="*", default=["target/release/roster"])
    parser.add_argument("--levels", default="info,warn")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if not os.path.exists(DATA):
        raise SystemExit(f"{DATA} is missing: `bench/run.sh --reads` writes it")
    levels = args.levels.split(",")
    print(f"| binary | {' | '.join(f'instructions per read, {level}' for level in levels)} |")
    print(f"|---|{'---|' * len(levels)}")
    for binary in args.binaries:
        counts = [count(binary, level, args.requests) for level in levels]
        print(f"| {binary} | {' | '.join(f'{c:,.0f}' for c in counts)} |")


if __name__ == "__main__":
    main()
