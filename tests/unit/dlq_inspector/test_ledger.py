"""The in-memory replay ledger: records apply in ledger offset order, whoever wrote them."""

from __future__ import annotations

from aiokafka import ConsumerRecord
from dlq_inspector.ledger import LedgerEntry, ReplayLedger
from hypothesis import given
from hypothesis import strategies as st

KEY = "sensor-events-1-42"


def entry(offset: int) -> LedgerEntry:
    return LedgerEntry("job", 1_764_000_000_000, "sensor-events", 2, offset, 0, 7, patched=True)


def consumed(
    offset: int, value: LedgerEntry | None, key: str = KEY
) -> ConsumerRecord[bytes, bytes]:
    raw = None if value is None else value.to_json()
    return ConsumerRecord(
        "replays", 0, offset, 0, 0, key.encode(), raw, None, len(key), len(raw or b""), ()
    )


def test_a_record_round_trips_through_its_json() -> None:
    ledger = ReplayLedger()
    ledger.apply(consumed(0, entry(11)))
    assert ledger.get(KEY) == entry(11)


def test_own_writes_and_consumed_records_apply_in_offset_order() -> None:
    ledger = ReplayLedger()
    ledger.record(KEY, entry(5), offset=5)
    ledger.apply(consumed(5, entry(5)))  # its own write, read back: no change
    ledger.apply(consumed(3, None))  # an older tombstone read late: ignored
    assert ledger.get(KEY) == entry(5)
    ledger.apply(consumed(8, None))  # a newer tombstone: unresolved again
    assert KEY not in ledger
    ledger.apply(consumed(6, entry(6)))  # older than the tombstone: ignored
    ledger.record(KEY, entry(7), offset=7)
    assert KEY not in ledger
    ledger.record(KEY, entry(9), offset=9)
    assert ledger.get(KEY) == entry(9)


def test_an_unreadable_record_is_ignored() -> None:
    ledger = ReplayLedger()
    ledger.apply(ConsumerRecord("replays", 0, 0, 0, 0, KEY.encode(), b"{nope", None, 1, 5, ()))
    ledger.apply(ConsumerRecord("replays", 0, 1, 0, 0, KEY.encode(), b'{"a": 1}', None, 1, 8, ()))
    assert KEY not in ledger


@given(st.permutations(range(6)))
def test_the_outcome_does_not_depend_on_arrival_order(order: list[int]) -> None:
    """Offsets 0..5 alternate entries and tombstones; the newest (5, a tombstone) wins."""
    ledger = ReplayLedger()
    for offset in order:
        value = entry(offset) if offset % 2 == 0 else None
        if value is not None and offset in (0, 4):
            ledger.record(KEY, value, offset)  # some arrive as own writes
        else:
            ledger.apply(consumed(offset, value))
    assert KEY not in ledger
