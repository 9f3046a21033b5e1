#!/usr/bin/env python3
"""Writes a users file for measuring `roster import` / `roster export` at scale.

    python3 bench/users_file.py 1000000 /tmp/users-1m.json

Names mix accented first and last names from several languages; every email is unique
(the user's number is part of it); timestamps are RFC 3339 with microseconds, as the
store writes them. One user in a hundred carries keys Roster does not model, and one
record in ten thousand is not a user at all, so both kinds of passenger are measured.
The output is seeded: the same arguments give the same file.
"""
import json
import random
import sys
import unicodedata
import uuid
from datetime import datetime, timedelta, timezone

FIRST = ["Zoë", "José", "Ana", "Łukasz", "Søren", "Chloé", "Jürgen", "Ines", "Mateo",
         "Aoife", "François", "Noémie", "Björn", "Ömer", "Renée", "Dvořák", "Agnès",
         "Siobhán", "Nuño", "Mårten", "Zsófia", "Çelik", "Élodie", "Tomás", "Amélie"]
LAST = ["Núñez", "Müller", "García", "Kowalczyk", "Østergaard", "Lefèvre", "Schröder",
        "Ó Briain", "Conceição", "Dvořáková", "Åberg", "Yılmaz", "Fernández", "Grünwald",
        "Szabó", "Çakır", "Nováková", "Brontë", "Pérez", "D'Ávila"]
SPECIAL = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "ı": "i", "æ": "ae"})
DOMAINS = ["example.com", "exemple.fr", "beispiel.de", "ejemplo.es", "przyklad.pl"]


def ascii_part(text):
    """The name as an address's local part: accents dropped, lowercase, dashes for the rest."""
    plain = unicodedata.normalize("NFKD", text.translate(SPECIAL))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in plain.lower())


def main():
    count = int(sys.argv[1])
    out = sys.argv[2]
    rng = random.Random(20240501)
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    with open(out, "w", encoding="utf-8") as f:
        f.write("[")
        for n in range(count):
            if n:
                f.write(",\n")
            if n % 10_000 == 9_999:
                f.write(json.dumps({"note": f"not a user ({n})", "kept": [n, None]}))
                continue
            first, last = rng.choice(FIRST), rng.choice(LAST)
            created = start + timedelta(microseconds=rng.randrange(5 * 365 * 86400 * 10**6))
            updated = created + timedelta(microseconds=rng.randrange(86400 * 10**6))
            record = {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "name": f"{first} {last}",
                "email": f"{ascii_part(first)}.{ascii_part(last)}.{n}@{rng.choice(DOMAINS)}",
                "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "updated_at": updated.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            if n % 100 == 0:
                record["role"] = rng.choice(["admin", "editor", "viewer"])
                record["tags"] = [first, {"since": n}]
            f.write(json.dumps(record, ensure_ascii=False))
        f.write("]\n")


if __name__ == "__main__":
    main()
