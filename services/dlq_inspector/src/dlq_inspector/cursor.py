"""Opaque, stable pagination cursors: the next offset to read in every DLQ partition.

A cursor is base64url(JSON) of ``{"v": 1, "p": [[partition, offset], ...]}``. Offsets are
Kafka's own, so a cursor stays valid while new messages arrive and across restarts of the
service; a partition absent from the cursor is read from its beginning.
"""

from __future__ import annotations

import base64
import binascii

import orjson

VERSION = 1


class InvalidCursor(ValueError):
    """The cursor was not issued by this service (or was altered)."""


def encode(positions: dict[int, int]) -> str:
    body = orjson.dumps({"v": VERSION, "p": sorted(positions.items())})
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def decode(cursor: str) -> dict[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if body["v"] != VERSION:
            raise InvalidCursor(f"cursor version {body['v']!r} is not supported")
        pairs = [(p, o) for p, o in body["p"]]
    except InvalidCursor:
        raise
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeError):
        raise InvalidCursor("cursor is not one this service issued") from None
    # Kafka's own ranges, as JSON integers (not 1e30, not true): anything else was not issued
    # here, and would fail deep in a seek.
    if not all(_within(p, MAX_PARTITION) and _within(o, MAX_OFFSET) for p, o in pairs):
        raise InvalidCursor("cursor is not one this service issued")
    return dict(pairs)


MAX_PARTITION = 2**31 - 1
MAX_OFFSET = 2**63 - 1


def _within(value: object, top: int) -> bool:
    return type(value) is int and 0 <= value <= top
