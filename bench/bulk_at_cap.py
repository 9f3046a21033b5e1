#!/usr/bin/env python3
"""Times a bulk email update at the cap on the PostgreSQL store.

    python3 bench/bulk_at_cap.py target/release/roster LABEL [ITEMS]

Starts one replica over a fresh database (on the local server, user postgres), creates one
user and sends one `bulkUpdateEmails` of ITEMS items (default 10,000, the cap) that all name
that user, each with a new address. Prints how long the answer took and what it was (the
count applied, or the error code), and how long the database stayed busy with it (until no
statement of that database is active). Python standard library only.
"""
import json, subprocess, sys, time, urllib.request, socket

binary, label = sys.argv[1], sys.argv[2]
items = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
db = f"roster_bulk_{label}"
psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-At"]
subprocess.run(psql + ["-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", "postgres"], check=True)
subprocess.run(psql + ["-c", f"CREATE DATABASE {db}", "postgres"], check=True)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
server = subprocess.Popen([binary, "--port", str(port), "--database-url", f"postgres://postgres@127.0.0.1/{db}"],
                          stderr=subprocess.DEVNULL)
def gql(query, variables=None, timeout=120):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=timeout).read())
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1); break
        except Exception:
            time.sleep(0.1)
    uid = gql('mutation { createUser(userData: {name: "Ann", email: "ann@x.com"}) { user { id } } }')["data"]["createUser"]["user"]["id"]
    updates = [{"id": uid, "email": f"ann.{n}@x.com"} for n in range(items)]
    started = time.time()
    answer = gql("mutation($u: [EmailUpdateInput!]!) { bulkUpdateEmails(updates: $u) { ok updatedCount } }", {"u": updates})
    answered = time.time() - started
    code = answer.get("errors", [{}])[0].get("extensions", {}).get("code") if answer.get("errors") else "ok %s" % answer["data"]["bulkUpdateEmails"]["updatedCount"]
    while True:
        busy = subprocess.run(psql + ["-c", f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'active' AND pid <> pg_backend_pid()", "postgres"],
                              capture_output=True, text=True).stdout.strip()
        if busy == "0":
            break
        time.sleep(0.05)
    print(f"{label}: answered in {answered:.2f} s ({code}); database busy for {time.time() - started:.2f} s")
finally:
    server.terminate(); server.wait()
    subprocess.run(psql + ["-c", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", "postgres"])
