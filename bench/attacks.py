#!/usr/bin/env python3
"""What each hostile request of the test suite's hostile-input tests costs a Roster binary.

Usage: bench/attacks.py [BINARY ...] [--runs N]
(default: target/release/roster, 3 runs; give two binaries to compare before and after).

For every attack a fresh server is started on a free 127.0.0.1 port over its own data file,
the attack is sent (every request bounded by a client timeout), and the script records the
wall time, the server's CPU seconds (from /proc), its peak resident memory (VmHWM), the size
of the answer, and how long /health took while the attack ran. It prints the median of the
runs. Only the Python standard library is used; traffic goes to 127.0.0.1 only.
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, users=0, env=None, flags=()):
        self.dir = tempfile.TemporaryDirectory()
        self.data = os.path.join(self.dir.name, "users.json")
        with open(self.data, "w") as f:
            json.dump([{"id": f"id-{n}", "name": f"user{n}", "email": f"user{n}@example.com"}
                       for n in range(users)], f)
        self.port = free_port()
        self.stderr = open(os.path.join(self.dir.name, "stderr"), "w+b")
        self.proc = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--data-file", self.data, *flags],
            stdout=subprocess.DEVNULL, stderr=self.stderr,
            env={**os.environ, "RUST_LOG": "warn", **(env or {})})
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.get("/health", 1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path, timeout):
        with urllib.request.urlopen(self.url(path), timeout=timeout) as r:
            return r.read()

    def post(self, body, timeout):
        request = urllib.request.Request(self.url("/graphql"), data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            return e.read()

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def status(self, key):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        return 0.0

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()
        self.dir.cleanup()


def time_health(server):
    """Seconds a /health request takes, or infinity when it fails within 10 s."""
    started = time.time()
    try:
        server.get("/health", 10)
        return time.time() - started
    except OSError:
        return float("inf")


def health_during(server, attack, timeout):
    """Runs `attack` in a thread; after 0.5 s times a /health request."""
    result = {}

    def run():
        started = time.time()
        try:
            result["answer"] = attack()
        except OSError as e:
            result["answer"] = f"error: {e}".encode()
        result["wall"] = time.time() - started

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)
    health = time_health(server)
    thread.join(timeout)
    return result, health


def fan_out(levels, leaf):
    parts = ["query { ...F0 }"]
    parts += [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(levels)]
    parts.append(f"fragment F{levels} on Query {{ {leaf} }}")
    return " ".join(parts)


def request_attack(binary, body, users=0, timeout=15, env=None):
    server = Server(binary, users=users, env=env)
    try:
        cpu = server.cpu()
        result, health = health_during(server, lambda: server.post(body, timeout), timeout + 5)
        answer = result.get("answer", b"")
        return {"wall s": result.get("wall", timeout), "cpu s": server.cpu() - cpu,
                "peak MiB": server.status("VmHWM"), "answer bytes": len(answer),
                "health s": health}
    finally:
        server.stop()


def distinct_megabyte_queries(binary, count=20):
    server = Server(binary)
    try:
        cpu, started = server.cpu(), time.time()
        for n in range(count):
            query = "{ " + "a " * 500_000 + f"b{n} }}"
            server.post(json.dumps({"query": query}).encode(), 30)
        return {"wall s": time.time() - started, "cpu s": server.cpu() - cpu,
                "peak MiB": server.status("VmHWM"), "rss after MiB": server.status("VmRSS")}
    finally:
        server.stop()


def log_line(binary):
    server = Server(binary, env={"RUST_LOG": "info"})
    try:
        body = json.dumps({"query": "query($s: String) { allUsers(search: $s) { id } }",
                           "variables": {"s": "x" * 1_000_000}}).encode()
        server.post(body, 30)
        time.sleep(1)
        server.stderr.flush()
        server.stderr.seek(0)
        longest = max((len(line) for line in server.stderr.read().splitlines()), default=0)
        return {"longest log line bytes": longest}
    finally:
        server.stop()


def slow_clients(binary, wait=35):
    """200 clients trickling headers, 200 declaring a 1 MiB body and sending 8 bytes,
    2,000 idle: how many of them the server still holds after `wait` seconds."""
    server = Server(binary)
    sockets = []
    try:
        baseline = server.open_fds()
        for n in range(2_400):
            s = socket.create_connection(("127.0.0.1", server.port))
            if n < 200:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            elif n < 400:
                s.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 1048576\r\n\r\n{\"query\"")
            sockets.append(s)
        time.sleep(1)
        held_at_start = server.open_fds() - baseline
        health = time_health(server)
        time.sleep(wait)
        return {"held at start": held_at_start, f"held after {wait} s": server.open_fds() - baseline,
                "health s": health}
    finally:
        for s in sockets:
            s.close()
        server.stop()


def shutdown_with_a_stuck_client(binary):
    server = Server(binary)
    try:
        stuck = socket.create_connection(("127.0.0.1", server.port))
        stuck.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"query\"")
        time.sleep(0.5)
        started = time.time()
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(30)
        except subprocess.TimeoutExpired:
            code = "still running"
        stuck.close()
        return {"exit s": time.time() - started, "exit code": code}
    finally:
        server.stop()


ATTACKS = {
    "fragment fan-out, 24 levels of __typename": lambda b: request_attack(
        b, json.dumps({"query": fan_out(24, "__typename")}).encode()),
    "fragment fan-out, 30 levels of allUsers": lambda b: request_attack(
        b, json.dumps({"query": fan_out(30, "allUsers { id }")}).encode()),
    "300 aliases of allUsers { id }, 10,000 users": lambda b: request_attack(
        b, json.dumps({"query": "{ " + " ".join(f"a{n}: allUsers {{ id }}" for n in range(300)) + " }"}).encode(),
        users=10_000, timeout=60),
    "syntax error in a 1 MB query": lambda b: request_attack(
        b, json.dumps({"query": "{ " + "a " * 500_000 + " ( }"}).encode()),
    "20 distinct 1 MiB queries": distinct_megabyte_queries,
    "1 MB search string, RUST_LOG=info": log_line,
    "slow and idle clients (200 + 200 + 2,000)": slow_clients,
    "SIGTERM with a stuck client": shutdown_with_a_stuck_client,
}


def median(values):
    numbers = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(numbers) if len(numbers) == len(values) else values[0]


def main():
    args = sys.argv[1:]
    runs = 3
    if "--runs" in args:
        at = args.index("--runs")
        runs = int(args[at + 1])
        del args[at:at + 2]
    only = None
    if "--only" in args:
        at = args.index("--only")
        only = args[at + 1]
        del args[at:at + 2]
    binaries = args or ["target/release/roster"]
    for name, attack in ATTACKS.items():
        if only and only not in name:
            continue
        for binary in binaries:
            results = [attack(binary) for _ in range(runs)]
            summary = {key: median([r[key] for r in results]) for key in results[0]}
            shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
            print(f"{name} | {binary} | {shown}", flush=True)


if __name__ == "__main__":
    main()
