"""The job's classification agrees with the contract's ``parse_event`` on every record."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf
from spark_jobs import classify

from iotpipe.contract import (
    DEFAULT_TIME_BOUNDS,
    REQUIRED_FIELDS,
    SCHEMA_VERSION,
    SENSOR_TYPES,
    ContractViolation,
    ErrorType,
    EventTimeBounds,
    SensorEvent,
    SensorType,
    parse_event,
)

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ARRIVED = datetime(2026, 11, 28, tzinfo=UTC)
"""The Kafka record time of every record here: the corpus's events are before it, or
around the contract's bound ahead of it (an hour)."""


def _valid(kind: SensorType = SensorType.TEMPERATURE, **changes: object) -> dict[str, object]:
    spec = SENSOR_TYPES[kind]
    record: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "sensor_id": f"sensor-{kind.value}",
        "sensor_type": kind.value,
        "timestamp": "2026-11-26T10:00:00.123Z",
        "value": (spec.min_value + spec.max_value) / 2,
        "unit": spec.unit,
        "location": "plant-a",
        "schema_version": SCHEMA_VERSION,
    }
    record.update(changes)
    return record


def _without(*names: str) -> dict[str, object]:
    record = _valid()
    for name in names:
        del record[name]
    return record


def corpus() -> list[bytes]:
    """Good and bad records of every kind, canonical and not (fast and slow path)."""
    good: list[object] = [_valid(kind) for kind in SensorType]
    good += [
        _valid(timestamp="2026-11-26T12:00:00+02:00"),
        _valid(timestamp="2026-11-26T10:00:00Z"),
        _valid(timestamp="2026-11-26 10:00:00.5Z"),  # slow path (no 'T')
        _valid(event_id=str(uuid.uuid4()).upper()),
        _valid(event_id=uuid.uuid4().hex),  # slow path: undashed UUID
        _valid(firmware="1.2.3", extra={"nested": [1, 2]}),  # unknown fields tolerated
        _without("schema_version"),  # a missing field with a default
        _valid(sensor_id="  padded  "),  # stripped by the contract
        _valid(sensor_id="12345"),  # a string that looks like a number
        _valid(location="caf\u00e9 \u2603"),
        _valid(value=21),
        _valid(value="21.5"),  # lax: a numeric string is a float
        _valid(schema_version=1.0),
        _valid(value=-0.0),
        _valid(value=1e99),
        _valid(value=123456789012345678),  # 18 digits: rounded to a double as JSON does
        _valid(firmware=None, calibrated=True, rev=-3, gain=2.5e-7),  # scalar extras
        _valid(timestamp="2026-11-26T00:30:00.000001+23:59"),  # the day before in UTC
        _valid(timestamp="2026-11-26T23:30:00.999999-23:59"),  # the day after
        _valid(timestamp="2024-02-29T12:00:00Z"),  # a leap day
        _valid(timestamp="1970-01-01T00:59:59.5+01:00"),  # before the epoch in UTC
        _valid(timestamp="1000-01-01T00:00:00+01:00"),  # year 999 in UTC
        _valid(timestamp="2026-11-26T10:00:00z"),
        _valid(timestamp="2026-11-28T01:00:00Z"),  # just the hour ahead the contract allows
        _valid(timestamp="2026-11-28T02:00:00+01:00"),
    ]
    raws = [orjson.dumps(record) for record in good]
    raws += [
        b'{"event_id": "%s", "sensor_id": "s\\u00e9", "sensor_type": "humidity", '
        b'"timestamp": "2026-11-26T10:00:00Z", "value": 5, "unit": "percent", "location": "x"}'
        % str(uuid.uuid4()).encode(),
        orjson.dumps(_valid()) + b"\n",
        orjson.dumps(_valid(), option=orjson.OPT_INDENT_2),  # whitespace between tokens
        orjson.dumps(_valid()).replace(b'"value":', b'"value":-0,"v":'),  # -0 is 0.0
        orjson.dumps(_valid()).replace(b'"value":', b'"value":1E+2,"v":'),
        # more digits than the fast path reads (and than 64 bits)
        orjson.dumps(_valid()).replace(b'"value":', b'"value":1234567890123456789012,"v":'),
    ]
    bad: list[object] = [_without(name) for name in REQUIRED_FIELDS]
    bad += [
        _valid(timestamp="2026-11-28T01:00:00.000001Z"),  # more than an hour ahead
        _valid(timestamp="2026-11-28 01:00:01Z"),  # the same, on the slow path
        _valid(timestamp="2099-01-01T00:00:00Z"),
    ]
    bad += [{**_valid(), name: None} for name in REQUIRED_FIELDS]
    bad += [
        _valid(schema_version=None),
        _valid(value="hot"),
        _valid(value=True),
        _valid(sensor_id=12345),
        _valid(location=["a"]),
        _valid(unit={"u": 1}),
        _valid(timestamp=1764151200),
        _valid(sensor_type="radiation"),
        _valid(unit="fahrenheit"),
        _valid(event_id="not-a-uuid"),
        _valid(timestamp="2026-11-26T10:00:00"),  # no offset
        _valid(timestamp="2026-13-01T00:00:00Z"),
        _valid(timestamp="yesterday"),
        _valid(schema_version=SCHEMA_VERSION + 1),
        _valid(schema_version=0),
        _valid(sensor_id=""),
        _valid(sensor_id="x" * 200),
        _valid(sensor_id="   "),
        _valid(timestamp="2023-02-29T12:00:00Z"),  # not a leap year
        _valid(timestamp="2026-11-26T23:59:60Z"),
        _valid(timestamp="2026-11-26T24:00:00Z"),
        _valid(timestamp="2026-11-26T10:00:00.1234567Z"),
        _valid(timestamp="2026-11-26T10:00:00+24:00"),
        _valid(timestamp="9999-12-31T23:59:59-01:00"),  # year 10000 in UTC
        _valid(event_id="6513270e-269e-0d37-f2a7-4de452e6b43g"),
        _valid(schema_version=-1),
        [1, 2, 3],
        "just a string",
        42,
        None,
    ]
    raws += [orjson.dumps(record) for record in bad]
    canonical = orjson.dumps(_valid())
    raws += [
        b"",
        b"{not json",
        b"\xff\xfe\x00garbage",
        canonical[:-1],  # truncated
        canonical + b" trailing",
        canonical + canonical,
        canonical.replace(b'"value":', b'"value":1e400,"v0":'),
        canonical.replace(b'"location"', b'"x":NaN,"location"'),
        canonical.replace(b'"location"', b'"x":1e999,"location"'),
        canonical.replace(b'"', b"'"),
        canonical.replace(b'"plant-a"', b'"\\ud800"'),
        canonical.replace(b"plant-a", b"plant-\xc3"),
        canonical.replace(b'"value":', b'"value":"x","value":'),  # duplicate key, last wins
        canonical.replace(b'"sensor_id":', b'"sensor_id":7,"sensor_id":'),
        canonical.replace(b'"schema_version":1', b'"schema_version":1,"schema_version":1'),
        *(
            canonical.replace(b'"value":', b'"value":%s,"v":' % number)
            for number in (b"01", b"1.", b".5", b"+1", b"-", b"1e", b"0x10", b"1_0")
        ),
        canonical.replace(b'"location"', b'"x":tru,"location"'),
        canonical.replace(b'"location"', b'"x":"a\tb","location"'),  # a raw tab
        canonical.replace(b"{", b"{,"),
        canonical.replace(b"}", b",}"),
        b"{}",
    ]
    return raws


def contract_verdict(raw: bytes | None) -> tuple[str | None, dict[str, object] | None]:
    try:
        event = parse_event(raw if raw is not None else b"", ARRIVED)
    except ContractViolation as violation:
        return violation.error_type.value, None
    return None, orjson.loads(event.to_json())


def _classify(
    spark: SparkSession,
    raws: list[bytes | None],
    bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS,
    arrived: list[datetime | None] | None = None,
) -> list[tuple[str | None, dict | None]]:
    arrivals = arrived or [ARRIVED] * len(raws)
    frame = spark.createDataFrame(
        [
            (raw, "t", 0, offset, at)
            for offset, (raw, at) in enumerate(zip(raws, arrivals, strict=True))
        ],
        "value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    classified = classify.classify(frame, bounds)
    classified = classified.withColumn("event_us", sf.unix_micros("timestamp"))
    rows = sorted(classified.collect(), key=lambda row: row.offset)
    assert [row.offset for row in rows] == list(range(len(raws))), "every record exactly once"
    verdicts: list[tuple[str | None, dict | None]] = []
    for row in rows:
        if row.error_type is not None:
            verdicts.append((row.error_type, None))
            continue
        fields = {name: row[name] for name in classify.EVENT_FIELDS}
        fields["timestamp"] = EPOCH + timedelta(microseconds=row.event_us)
        event = SensorEvent(**fields)
        verdicts.append((None, orjson.loads(event.to_json())))
    return verdicts


def test_spark_classification_agrees_with_parse_event(spark: SparkSession) -> None:
    raws: list[bytes | None] = [*corpus(), None]
    expected = [contract_verdict(raw) for raw in raws]

    actual = _classify(spark, raws)

    disagreements = [
        (raw, want, got)
        for raw, want, got in zip(raws, expected, actual, strict=True)
        if want != got
    ]
    assert not disagreements, disagreements
    kinds = {error for error, _ in expected}
    assert kinds == {None, *(e.value for e in ErrorType)}, "corpus covers every outcome"


def test_the_event_time_bounds_are_configurable_and_the_same_on_both_paths(
    spark: SparkSession,
) -> None:
    bounds = EventTimeBounds(max_ahead=timedelta(minutes=5), max_behind=timedelta(days=1))
    cases = [  # (event time - arrival, within the bounds)
        (timedelta(0), True),
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, microseconds=1), False),
        (-timedelta(days=1), True),
        (-timedelta(days=1, microseconds=1), False),
        (timedelta(days=365 * 70), False),
    ]
    raws: list[bytes | None] = []
    for offset, _ in cases:
        stamp = (ARRIVED + offset).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        raws.append(orjson.dumps(_valid(timestamp=stamp)))  # the fast path's form
        raws.append(orjson.dumps(_valid(timestamp=stamp.replace("T", " "))))  # the slow path's
    for (offset, within), raw in zip(cases, raws[::2], strict=True):
        if within:
            parse_event(raw or b"", ARRIVED, bounds)
            continue
        side = "ahead" if offset > timedelta(0) else "behind"
        with pytest.raises(ContractViolation, match=side) as caught:
            parse_event(raw or b"", ARRIVED, bounds)
        assert caught.value.error_type is ErrorType.OUT_OF_CONTRACT
    late_clock = orjson.dumps(_valid(timestamp="2099-01-01T00:00:00Z"))

    verdicts = _classify(spark, [*raws, late_clock], bounds, [ARRIVED] * len(raws) + [None])

    accepted = [error is None for error, _ in verdicts]
    assert accepted == [within for _, within in cases for _ in (1, 2)] + [True], (
        "a record without a Kafka time has nothing to be bounded by"
    )
    frame = spark.createDataFrame(
        [(raw, "t", 0, i, ARRIVED) for i, raw in enumerate(raws)],
        "value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    fast = {row.offset for row in classify.prepare(frame, bounds).where("_fast").collect()}
    assert fast == {0, 2, 6}, "the fast path takes the records of its form within the bounds"


def test_the_fast_path_takes_the_canonical_wire_format_and_its_plain_variants(
    spark: SparkSession,
) -> None:
    canonical = [SensorEvent.model_validate(_valid(kind)).to_json() for kind in SensorType]
    fast = [
        *canonical,
        orjson.dumps(_valid(), option=orjson.OPT_INDENT_2),
        orjson.dumps(_valid(firmware="1.2.3", calibrated=True, rev=-3, gain=None)),
        orjson.dumps(_valid(timestamp="2026-11-26T12:00:00.5+02:00")),
        orjson.dumps(_valid(event_id=str(uuid.uuid4()).upper())),
        orjson.dumps(_valid(value=21)),
    ]
    slow = [
        orjson.dumps(_valid(value="21.5")),  # valid, but lax
        orjson.dumps(_without("schema_version")),  # valid, by default
        orjson.dumps(_valid(location="caf\u00e9")),  # not ASCII
        orjson.dumps(_valid(extra={"nested": 1})),
        canonical[0].replace(b"sensor-", b"sensor\\u002d"),  # an escape
        canonical[0].replace(b'"location"', b'"x":1e400,"location"'),
        orjson.dumps(_valid(sensor_type="radiation")),
    ]
    frame = spark.createDataFrame(
        [(raw, "t", 0, i, ARRIVED) for i, raw in enumerate(fast + slow)],
        "value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    taken = {row.offset for row in classify.prepare(frame).where("_fast").collect()}
    assert taken == set(range(len(fast)))


def test_the_fast_path_reads_the_values_the_contract_reads(spark: SparkSession) -> None:
    raws = [
        orjson.dumps(_valid(timestamp="2026-11-26T00:30:00.000001+23:59", value=-0.0)),
        orjson.dumps(_valid(timestamp="1969-12-31T23:59:59.5Z", value=123456789012345678)),
        orjson.dumps(_valid(event_id="6513270E-269E-0D37-F2A7-4DE452E6B438")).replace(
            b'"value":', b'"value":-0,"v":'
        ),
    ]
    frame = spark.createDataFrame(
        [(raw, "t", 0, i, ARRIVED) for i, raw in enumerate(raws)],
        "value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    prepared = classify.prepare(frame).withColumn("event_us", sf.unix_micros("timestamp"))
    rows = sorted(prepared.collect(), key=lambda row: row.offset)
    assert all(row._fast for row in rows)
    for raw, row in zip(raws, rows, strict=True):
        event = parse_event(raw)
        assert row.event_id == str(event.event_id)
        assert EPOCH + timedelta(microseconds=row.event_us) == event.timestamp
        assert (row.value, math.copysign(1, row.value)) == (
            event.value,
            math.copysign(1, event.value),
        )
