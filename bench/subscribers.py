#!/usr/bin/env python3
"""What live subscribers cost a Roster binary: CPU per create, memory per subscriber.

Usage: bench/subscribers.py [BINARY ...] [--sockets N] [--per-socket M] [--creates K]
                            [--selections S] [--log LEVEL]
(default: target/release/roster, 255 sockets x 100 subscriptions, 50 creates, one selection,
RUST_LOG=info, the service's default; give two binaries to compare before and after).

For each binary a fresh server is started on a free 127.0.0.1 port over an empty data file,
with the WebSocket caps raised by flags (and ROSTER_MAX_SUBSCRIPTIONS, which older builds
ignore). N sockets speak graphql-transport-ws: connection_init, then M `userEvents`
subscriptions with ids s0..s(M-1) (S distinct selections, given in turn). They are live once
/metrics counts them all. Then K creates go over HTTP one at a time, each waiting until
every subscription has received its event (the right id, a CREATED event), so the clients
read everything and one create's fan-out ends before the next; two more come first to warm
up. The server's CPU time (utime+stime from /proc/PID/stat) over the K creates, divided by
K, is printed, with the resident memory once the subscriptions are live. Only the Python
standard library is used; traffic goes to 127.0.0.1 only, and every wait is bounded.
"""

import argparse
import json
import os
import selectors
import socket
import subprocess
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
PATIENCE = 120.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def selection(n):
    fields = ["kind", "at", "revision", "user { id }", "user { name }", "user { email }"]
    extra = " ".join(f"a{i}: {fields[i % len(fields)]}" for i in range(n))
    return f"subscription {{ userEvents {{ kind user {{ id name email }} {extra} }} }}"


def frame(obj):
    """A masked client text frame (the mask of zeros leaves the payload as it is)."""
    payload = json.dumps(obj).encode()
    n = len(payload)
    if n < 126:
        head = bytes([0x81, 0x80 | n])
    elif n < 65536:
        head = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class Socket:
    """One graphql-transport-ws client socket, read without blocking."""

    def __init__(self, port, per_socket):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        self.sock.sendall((
            f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode(errors="replace"))
        self.buffer = b""
        self.per_socket = per_socket
        self.received = 0

    def messages(self):
        """The whole messages in the buffer (pings are answered)."""
        out = []
        while len(self.buffer) >= 2:
            opcode, n, at = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if n == 126:
                if len(self.buffer) < 4:
                    break
                n, at = int.from_bytes(self.buffer[2:4], "big"), 4
            elif n == 127:
                if len(self.buffer) < 10:
                    break
                n, at = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < at + n:
                break
            body, self.buffer = self.buffer[at:at + n], self.buffer[at + n:]
            if opcode == 0x9:  # ping: pong with the same payload
                self.sock.sendall(bytes([0x8A, 0x80 | len(body)]) + b"\0\0\0\0" + body)
            elif opcode == 0x8:
                raise RuntimeError(f"the server closed the socket: {body!r}")
            elif opcode == 0x1:
                out.append(json.loads(body))
        return out

    def read_blocking(self):
        while True:
            got = self.messages()
            if got:
                return got
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the socket ended")
            self.buffer += chunk

    def on_readable(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("the socket ended")
        self.buffer += chunk
        for message in self.messages():
            if message.get("type") != "next":
                raise RuntimeError(f"unexpected message: {message}")
            n = int(message["id"][1:])
            if not 0 <= n < self.per_socket:
                raise RuntimeError(f"not one of ours: {message}")
            if message["payload"]["data"]["userEvents"]["kind"] != "CREATED":
                raise RuntimeError(f"wrong event: {message}")
            self.received += 1


class Server:
    def __init__(self, binary, args):
        self.dir = tempfile.TemporaryDirectory()
        data = os.path.join(self.dir.name, "users.json")
        with open(data, "w") as f:
            f.write("[]")
        self.port = free_port()
        flags = ["--max-websockets", str(args.sockets), "--max-websockets-per-client", str(args.sockets),
                 "--max-websocket-operations", str(args.per_socket)]
        self.proc = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--data-file", data, *flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": args.log, "ROSTER_MAX_SUBSCRIPTIONS": "1000000"})
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return r.read()

    def create(self, n):
        body = json.dumps({
            "query": "mutation($u: UserInput!) { createUser(userData: $u) { ok } }",
            "variables": {"u": {"name": f"Sub {n}", "email": f"sub{n}@bench.example"}},
        }).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=PATIENCE) as r:
            answer = json.loads(r.read())
        assert answer["data"]["createUser"]["ok"], answer

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def subscribers(self):
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith("roster_graphql_subscribers "):
                return float(line.split()[1])
        return 0.0

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()


def measure(binary, args):
    server = Server(binary, args)
    sockets = []
    try:
        idle = server.rss_kib()
        for number in range(args.sockets):
            s = Socket(server.port, args.per_socket)
            s.sock.sendall(frame({"type": "connection_init"}))
            ack = s.read_blocking()
            assert ack[0]["type"] == "connection_ack", ack
            subscribes = b"".join(
                frame({"id": f"s{n}", "type": "subscribe",
                       "payload": {"query": selection((number * args.per_socket + n) % max(args.selections, 1))}})
                for n in range(args.per_socket))
            s.sock.sendall(subscribes)
            s.sock.setblocking(False)
            sockets.append(s)
        total = args.sockets * args.per_socket
        started = time.time()
        while server.subscribers() < total:
            if time.time() - started > PATIENCE:
                raise RuntimeError(f"only {server.subscribers()} of {total} subscriptions went live")
            time.sleep(0.1)
        live = server.rss_kib()
        selector = selectors.DefaultSelector()
        for s in sockets:
            selector.register(s.sock, selectors.EVENT_READ, s)

        def create_and_wait(n, expected):
            server.create(n)
            deadline = time.time() + PATIENCE
            while sum(s.received for s in sockets) < expected:
                if time.time() > deadline:
                    raise RuntimeError(f"only {sum(s.received for s in sockets)} of {expected} events arrived")
                for key, _ in selector.select(timeout=1):
                    key.data.on_readable()

        expected = 0
        for n in range(2):
            expected += total
            create_and_wait(n, expected)
        before = server.cpu()
        for n in range(2, 2 + args.creates):
            expected += total
            create_and_wait(n, expected)
        spent = server.cpu() - before
        for s in sockets:
            if s.received != (2 + args.creates) * args.per_socket:
                raise RuntimeError(f"a socket heard {s.received} events")
        return spent * 1000 / args.creates, live / 1024, (live - idle) / total
    finally:
        for s in sockets:
            s.sock.close()
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="*", default=["target/release/roster"])
    parser.add_argument("--sockets", type=int, default=255)
    parser.add_argument("--per-socket", type=int, default=100)
    parser.add_argument("--creates", type=int, default=50)
    parser.add_argument("--selections", type=int, default=1)
    parser.add_argument("--log", default="info")
    args = parser.parse_args()
    total = args.sockets * args.per_socket
    print(f"{args.sockets} sockets x {args.per_socket} subscriptions = {total} subscribers, "
          f"{args.selections} selection(s), {args.creates} creates, RUST_LOG={args.log}")
    print("| binary | CPU ms per create | CPU µs per subscriber per event | RSS MiB (live) | RSS KiB per subscriber |")
    print("|---|---|---|---|---|")
    for binary in args.binaries:
        cpu_ms, rss_mib, per_kib = measure(binary, args)
        print(f"| {binary} | {cpu_ms:.1f} | {cpu_ms * 1000 / total:.3f} | {rss_mib:.0f} | {per_kib:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
