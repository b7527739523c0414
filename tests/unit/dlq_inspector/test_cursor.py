"""Cursors: opaque, round-trip exactly, and refuse anything this service did not issue."""

from __future__ import annotations

import base64

import pytest
from dlq_inspector import cursor
from hypothesis import given
from hypothesis import strategies as st

positions = st.dictionaries(st.integers(0, 10_000), st.integers(0, 2**62), max_size=50)


@given(positions)
def test_round_trip(found: dict[int, int]) -> None:
    token = cursor.encode(found)
    assert cursor.decode(token) == found
    assert token.isascii()
    assert not set(token) & set("=/+")  # URL-safe as is


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "bm90IGpzb24",  # "not json"
        base64.urlsafe_b64encode(b'{"v":1}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[[0,-1]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[["a",1]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":7}').decode(),
        # Crafted numbers: a float, a bool, beyond Kafka's partition and offset ranges.
        base64.urlsafe_b64encode(b'{"v":1,"p":[[0,1e30]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[[0,1.0]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[[true,1]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[[0,9223372036854775808]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[[2147483648,0]]}').decode(),
        base64.urlsafe_b64encode(b'{"v":1,"p":[[0,1,2]]}').decode(),
        "ü",
    ],
)
def test_foreign_cursors_are_refused(token: str) -> None:
    with pytest.raises(cursor.InvalidCursor):
        cursor.decode(token)


def test_another_version_is_named() -> None:
    token = base64.urlsafe_b64encode(b'{"v":9,"p":[]}').decode()
    with pytest.raises(cursor.InvalidCursor, match="version 9"):
        cursor.decode(token)
