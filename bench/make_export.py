#!/usr/bin/env python3
"""Writes N typical sessions (about 400 bytes each, as bench_util.h's TypicalSession) in
sessionctl's export format (JSON Lines), for timing `sessionctl import`.

    bench/make_export.py 1000000 > sessions.jsonl
"""
import json
import sys
import uuid

n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    session = {
        "sessionId": str(uuid.UUID(int=i + 1, version=4)),
        "siteCode": "main", "currency": "EUR", "cartId": "cart-7f3c2a1e-9b4d",
        "targetLocation": "DE", "language": "de-CH",
        "context": {"giftWrap": True, "deliveryWindow": {"from": "09:00", "to": "12:00"},
                    "campaign": "winter-sale-2026",
                    "recentlyViewed": ["sku-1", "sku-2", "sku-3", "sku-4"], "storeId": 1042},
        "metadata": {"version": 1 + i % 7, "createdAt": "2026-11-27T10:00:00.000Z",
                     "modifiedAt": "2026-11-27T10:05:00.000Z"},
    }
    line = {"tenant": "acme", "session": session}
    if i % 10:
        line["expiresAt"] = "2099-01-01T00:00:00.000Z"
    else:
        session["customerId"] = "customer-%d" % i
    out.write(json.dumps(line, separators=(",", ":")) + "\n")
