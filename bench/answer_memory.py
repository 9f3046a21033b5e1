#!/usr/bin/env python3
"""Peak memory and /health latency of a Roster binary while many clients fetch the whole list.

Usage: bench/answer_memory.py [--binary PATH] [--users N] [--clients 1,8,32,64,128]
                              [--rounds N] [--flags "--max-answer-memory-mib 256"] [--label TEXT]
(defaults: target/release/roster, 100,000 users, 3 rounds per client, the binary's own flags).

The users file is made once with `roster seed N --out FILE`. For every client count a fresh
server is started on a free 127.0.0.1 port, every client fetches
`{ allUsers { id name email createdAt updatedAt } }` `--rounds` times (reading each answer
whole), and meanwhile a probe asks `/health` every 0.25 s with a 3 s timeout. The table gives
the server's peak resident memory (VmHWM), the answers served and refused (503 OVERLOADED),
other failures, and the slowest /health answer and how many probes got none within 3 s.
Only the Python standard library is used; traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import shlex
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

QUERY = json.dumps({"query": "{ allUsers { id name email createdAt updatedAt } }"}).encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, data, flags):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--data-file", data,
             "--max-connections", "1024", *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"})
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url("/health"), timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def peak_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def client(server, rounds, tally, lock):
    for _ in range(rounds):
        request = urllib.request.Request(server.url("/graphql"), data=QUERY,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as r:
                r.read()
                outcome = "served"
        except urllib.error.HTTPError as e:
            e.read()
            outcome = "refused" if e.code == 503 else "failed"
        except OSError:
            outcome = "failed"
        with lock:
            tally[outcome] += 1


def probe(server, stop, result):
    while not stop.is_set():
        started = time.time()
        try:
            urllib.request.urlopen(server.url("/health"), timeout=3).read()
            result["max"] = max(result["max"], time.time() - started)
        except OSError:
            result["missed"] += 1
        result["probes"] += 1
        time.sleep(0.25)


def run(binary, data, flags, clients, rounds):
    server = Server(binary, data, flags)
    try:
        tally, lock = {"served": 0, "refused": 0, "failed": 0}, threading.Lock()
        health = {"max": 0.0, "missed": 0, "probes": 0}
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(server, stop, health))
        prober.start()
        started = time.time()
        threads = [threading.Thread(target=client, args=(server, rounds, tally, lock)) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.time() - started
        stop.set()
        prober.join()
        return {**tally, "wall": wall, "peak": server.peak_mib(), **health}
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/roster")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--clients", default="1,8,32,64,128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flags", default="")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    flags = shlex.split(args.flags)
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, "users.json")
        subprocess.run([args.binary, "seed", str(args.users), "--out", data], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"{args.label or 'flags: ' + (args.flags or '(defaults)')}, {args.users} users, "
              f"{args.rounds} rounds per client")
        print("| clients | peak RSS MiB | served | refused 503 | failed | wall s | max /health s | /health missed (3 s) |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for count in [int(c) for c in args.clients.split(",")]:
            r = run(args.binary, data, flags, count, args.rounds)
            print(f"| {count} | {r['peak']:.0f} | {r['served']} | {r['refused']} | {r['failed']} | "
                  f"{r['wall']:.1f} | {r['max']:.2f} | {r['missed']} of {r['probes']} |", flush=True)


if __name__ == "__main__":
    main()
