"""The DLQ index: decoding, filters, merged order, cursor pages, retention."""

from __future__ import annotations

import random
from collections import Counter

from dlq_inspector.index import DlqIndex, Entry, MessageFilter, sensor_id_of
from hypothesis import given, settings
from hypothesis import strategies as st

from iotpipe.contract import ErrorType
from iotpipe.dlq import DeadLetter

TYPES = list(ErrorType)


def headers(error_type: ErrorType, source_offset: int, at_ms: int) -> list[tuple[str, bytes]]:
    return DeadLetter(
        error_type=error_type,
        error_detail="why",
        source_topic="sensor-events",
        source_partition=source_offset % 3,
        source_offset=source_offset,
        source_timestamp_ms=at_ms - 5,
        dead_lettered_at_ms=at_ms,
        value=b"",
    ).headers()


def build(records: list[tuple[int, int, int]]) -> DlqIndex:
    """records: (partition, type index, dead-lettered at) in arrival order per partition."""
    index = DlqIndex()
    next_offset: dict[int, int] = {}
    for n, (partition, kind, at) in enumerate(records):
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        value = f'{{"sensor_id": "s-{n % 4}"}}'.encode()
        index.add(partition, offset, value, headers(TYPES[kind], n, at))
    return index


def test_sensor_ids_are_read_where_possible() -> None:
    assert sensor_id_of(b'{"sensor_id": " s-1 ", "value": 1}') == "s-1"
    assert sensor_id_of(b'{"sensor_id": 42}') == "42"
    assert sensor_id_of(b'{"sensor_id": true}') is None
    assert sensor_id_of(b'{"sensor_id": "s-2", "value": tru') == "s-2"  # truncated
    assert sensor_id_of(b"[1, 2]") is None
    assert sensor_id_of(b"\xff\xfe") is None
    assert sensor_id_of(b"") is None


def test_records_without_dead_letter_headers_are_counted_not_indexed() -> None:
    index = DlqIndex()
    assert index.add(0, 0, b"x", [("error_type", b"malformed_json")]) is None
    assert (
        index.add(0, 1, b"x", [("error_type", b"nonsense"), *headers(TYPES[0], 1, 1)[1:]]) is None
    )
    assert (len(index), index.unreadable) == (0, 2)


def test_a_re_read_record_is_indexed_once() -> None:
    index = DlqIndex()
    for _ in range(2):
        index.add(0, 0, b"{}", headers(ErrorType.MALFORMED_JSON, 0, 10))
    assert len(index) == 1
    assert index.counts[ErrorType.MALFORMED_JSON] == 1


def test_prune_forgets_what_retention_deleted() -> None:
    index = build([(0, 0, 10), (0, 1, 20), (0, 2, 30), (1, 3, 15)])
    assert index.prune(0, 2) == 2
    assert [e.offset for e in index.scan()] == [0, 2]  # partition 1's offset 0, partition 0's 2
    assert index.get(0, 1) is None
    assert index.get(0, 2) is not None
    assert index.counts[ErrorType(TYPES[0])] == 0
    assert index.prune(0, 2) == 0


def test_filters() -> None:
    index = build([(0, 0, 10), (1, 1, 20), (2, 2, 30), (0, 3, 40), (1, 0, 50)])
    everything = list(index.scan())
    assert [e.dead_lettered_at_ms for e in everything] == [10, 20, 30, 40, 50]

    def ids(flt: MessageFilter, replayed: set[str] = frozenset()) -> list[int]:  # type: ignore[assignment]
        return [e.dead_lettered_at_ms for e in index.select(flt, replayed.__contains__)]

    assert ids(MessageFilter(error_types=frozenset({TYPES[0]}))) == [10, 50]
    assert ids(MessageFilter(sensor_id="s-1")) == [20]
    assert ids(MessageFilter(since_ms=20, until_ms=40)) == [20, 30]
    replayed = {everything[1].source_key}
    assert ids(MessageFilter(replayed=True), replayed) == [20]
    assert ids(MessageFilter(replayed=False), replayed) == [10, 30, 40, 50]


records = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 50)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(1, 7), st.sets(st.integers(0, 3), max_size=3), st.randoms())
def test_pages_return_exactly_the_matches_in_order(
    found: list[tuple[int, int, int]], limit: int, kinds: set[int], rng: random.Random
) -> None:
    index = build(found)
    flt = MessageFilter(error_types=frozenset(TYPES[k] for k in kinds))
    never = set[str]().__contains__
    expected = index.select(flt, never)
    seen: list[Entry] = []
    positions: dict[int, int] = {}
    for _ in range(len(found) + 2):
        page = index.page(flt, positions, limit, never)
        assert len(page.entries) <= limit
        seen += page.entries
        positions = page.positions
        if not page.has_more:
            break
    assert seen == expected
    assert index.page(flt, positions, limit, never).entries == []
    # each partition in offset order (the merge across partitions is by dead-lettered time)
    for partition in range(3):
        offsets = [e.offset for e in seen if e.partition == partition]
        assert offsets == sorted(offsets)
    # a new message after the end is what the last cursor finds next
    partition = rng.randrange(3)
    offset = max((e.offset for e in index.scan() if e.partition == partition), default=-1) + 1
    kind = next(iter(kinds), 0)
    index.add(partition, offset, b"{}", headers(TYPES[kind], 999, 100))
    assert [e.offset for e in index.page(flt, positions, limit, never).entries] == [offset]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 2), st.integers(0, 11), st.integers(0, 50)),
            st.tuples(st.just("replay"), st.integers(0, 11), st.booleans(), st.just(0)),
            st.tuples(st.just("prune"), st.integers(0, 2), st.integers(0, 6), st.just(0)),
        ),
        max_size=60,
    )
)
def test_the_tallies_are_what_a_full_scan_counts(
    operations: list[tuple[str, int, int, int]],
) -> None:
    """Stats and metrics read the index's tallies instead of scanning it; through any mix of
    new dead letters (several per source record), replays recorded and forgotten (ledger
    tombstones) and retention, they agree with a scan."""
    replayed: set[str] = set()
    index = DlqIndex(replayed.__contains__)
    next_offset, clock = [0, 0, 0], [0, 0, 0]  # a partition's letters are written in time order
    for op, a, b, c in operations:
        if op == "add":
            partition, source = a, b
            clock[partition] += c
            letter = headers(TYPES[source % len(TYPES)], source, clock[partition])
            index.add(partition, next_offset[partition], b"{}", letter)
            next_offset[partition] += 1
        elif op == "replay":
            key, now_replayed = f"sensor-events-{a % 3}-{a}", bool(b)
            if now_replayed != (key in replayed):
                (replayed.add if now_replayed else replayed.discard)(key)
                index.replay_changed(key, now_replayed)
        else:
            index.prune(a, b)
        entries = list(index.scan())
        unresolved = [e for e in entries if e.source_key not in replayed]
        assert index.counts == Counter(e.error_type for e in entries) | Counter()
        assert +index.unresolved == Counter(e.error_type for e in unresolved)
        assert index.oldest_unresolved() == (unresolved[0] if unresolved else None)
        assert index.oldest() == (entries[0] if entries else None)
        assert index.newest() == (entries[-1] if entries else None)
