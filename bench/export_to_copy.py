#!/usr/bin/env python3
"""Turns an export (JSON Lines, as sessionctl export writes and make_export makes)
into the rows the postgresql: backend keeps for it, as two CSV files for COPY: one row
per session (sessions) and one per custom attribute (attributes). bench/compare COPYs
them into tables shaped like the backend's, as the bare baseline of an import.

    bench/export_to_copy.py sessions.jsonl sessions.csv attributes.csv
"""
import csv
import json
import sys


def main():
    src, sessions_csv, attributes_csv = sys.argv[1:4]
    with open(src) as f, open(sessions_csv, "w", newline="") as so, \
            open(attributes_csv, "w", newline="") as ao:
        sw, aw = csv.writer(so), csv.writer(ao)
        for line in f:
            row = json.loads(line)
            s = row["session"]
            meta = s.get("metadata", {})
            tenant, sid = row["tenant"], s["sessionId"]
            sw.writerow([tenant, sid, s.get("customerId", ""), s.get("siteCode", ""),
                         s.get("currency", ""), s.get("cartId", ""), s.get("targetLocation", ""),
                         s.get("language", ""), meta.get("version", 1), meta.get("createdAt"),
                         meta.get("modifiedAt"), row.get("expiresAt", ""), len(line)])
            for name, value in s.get("context", {}).items():
                v = json.dumps(value, separators=(",", ":"))
                aw.writerow([tenant, sid, name, v, len(name) + len(v) + 4])


if __name__ == "__main__":
    main()
