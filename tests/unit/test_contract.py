"""The event contract: parsing, classification into DLQ error types, derived schemas."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from iotpipe.contract import (
    REQUIRED_FIELDS,
    SENSOR_TYPES,
    ContractViolation,
    ErrorType,
    EventTimeBounds,
    SensorEvent,
    SensorType,
    json_schema,
    parse_event,
)
from iotpipe.settings import ContractSettings


def valid(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "sensor_id": "sensor-0001",
        "sensor_type": "temperature",
        "timestamp": "2026-11-26T10:00:00.123Z",
        "value": 21.5,
        "unit": "celsius",
        "location": "plant-a",
        "schema_version": 1,
    }
    record.update(changes)
    return record


def classify(raw: bytes) -> ErrorType:
    with pytest.raises(ContractViolation) as caught:
        parse_event(raw)
    return caught.value.error_type


def test_a_valid_event_parses_and_round_trips() -> None:
    event = parse_event(orjson.dumps(valid()))
    assert event.sensor_type is SensorType.TEMPERATURE
    assert event.timestamp == datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)
    assert parse_event(event.to_json()) == event
    assert orjson.loads(event.to_json())["timestamp"] == "2026-11-26T10:00:00.123Z"


def test_timestamps_with_offsets_are_stored_as_utc() -> None:
    event = parse_event(orjson.dumps(valid(timestamp="2026-11-26T12:00:00+02:00")))
    assert event.timestamp == datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    assert event.timestamp.tzinfo == UTC


def test_unknown_fields_are_tolerated_and_schema_version_defaults() -> None:
    record = valid(firmware="1.2.3")
    del record["schema_version"]
    event = parse_event(orjson.dumps(record))
    assert event.schema_version == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", ErrorType.MALFORMED_JSON),
        (b"\xff\xfe\x00garbage", ErrorType.MALFORMED_JSON),
        (b"", ErrorType.MALFORMED_JSON),
        (b"[1, 2, 3]", ErrorType.SCHEMA_MISMATCH),
        (b'"just a string"', ErrorType.SCHEMA_MISMATCH),
        (orjson.dumps(valid(value="hot")), ErrorType.SCHEMA_MISMATCH),
        (orjson.dumps(valid(sensor_id=12345)), ErrorType.SCHEMA_MISMATCH),
        (orjson.dumps(valid(value=None)), ErrorType.MISSING_REQUIRED),
        (
            orjson.dumps({k: v for k, v in valid().items() if k != "sensor_id"}),
            ErrorType.MISSING_REQUIRED,
        ),
        (orjson.dumps(valid(sensor_type="radiation")), ErrorType.OUT_OF_CONTRACT),
        (orjson.dumps(valid(unit="fahrenheit")), ErrorType.OUT_OF_CONTRACT),
        (orjson.dumps(valid(schema_version=99)), ErrorType.OUT_OF_CONTRACT),
        (orjson.dumps(valid(event_id="not-a-uuid")), ErrorType.OUT_OF_CONTRACT),
        (orjson.dumps(valid(timestamp="2026-11-26T10:00:00")), ErrorType.OUT_OF_CONTRACT),
        # the wire format's timestamp is ISO-8601 text; a number is not read as Unix time
        (orjson.dumps(valid(timestamp=0.53)), ErrorType.SCHEMA_MISMATCH),
        (orjson.dumps(valid(timestamp=1764151200)), ErrorType.SCHEMA_MISMATCH),
        (orjson.dumps(valid(timestamp=True)), ErrorType.SCHEMA_MISMATCH),
        (b'{"value": NaN}', ErrorType.MALFORMED_JSON),
        # valid in its own offset, but past year 9999 in UTC
        (orjson.dumps(valid(timestamp="9999-12-31T23:59:59-01:00")), ErrorType.OUT_OF_CONTRACT),
        (orjson.dumps(valid(timestamp="0001-01-01T00:00:00+01:00")), ErrorType.OUT_OF_CONTRACT),
    ],
)
def test_bad_records_are_classified(raw: bytes, expected: ErrorType) -> None:
    assert classify(raw) is expected


def test_non_finite_values_are_out_of_contract() -> None:
    with pytest.raises(ValueError, match="finite"):
        SensorEvent.model_validate(valid(value=math.inf))


def test_the_violation_names_what_is_missing() -> None:
    record = {k: v for k, v in valid().items() if k not in ("value", "unit")}
    with pytest.raises(ContractViolation, match="value, unit"):
        parse_event(orjson.dumps(record))


def test_physically_implausible_values_are_valid_data() -> None:
    # Silver flags them; the contract does not reject them.
    event = parse_event(orjson.dumps(valid(value=500.0)))
    assert not event.spec.in_range(event.value)


def test_every_sensor_type_has_a_unit_and_ordered_bounds() -> None:
    assert set(SENSOR_TYPES) == set(SensorType)
    for spec in SENSOR_TYPES.values():
        assert spec.unit
        assert spec.min_value < spec.max_value


def test_required_fields_are_the_contract_fields_without_defaults() -> None:
    assert set(REQUIRED_FIELDS) == {
        "event_id",
        "sensor_id",
        "sensor_type",
        "timestamp",
        "value",
        "unit",
        "location",
    }


def test_json_schema_accepts_what_the_model_writes_and_rejects_what_it_refuses() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.validate(orjson.loads(SensorEvent.model_validate(valid()).to_json()))
    assert not validator.is_valid({k: v for k, v in valid().items() if k != "value"})
    assert not validator.is_valid(valid(sensor_type="radiation"))


def test_committed_json_schema_file_matches_the_model() -> None:
    from iotpipe.contract import json_schema_text
    from iotpipe.jars import project_root

    committed = project_root() / "docs" / "sensor-event.schema.json"
    assert json.loads(committed.read_text()) == json.loads(json_schema_text())


@given(
    sensor_type=st.sampled_from(list(SensorType)),
    value=st.floats(allow_nan=False, allow_infinity=False, width=64),
    offset_minutes=st.integers(min_value=-720, max_value=720),
    sensor_id=st.text(
        # (no separators or control characters: the contract strips whitespace, U+0085 too)
        st.characters(
            min_codepoint=33, max_codepoint=0x2FFF, exclude_categories=("Zs", "Zl", "Zp", "Cc")
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_any_valid_event_survives_the_wire(
    sensor_type: SensorType, value: float, offset_minutes: int, sensor_id: str
) -> None:
    tz = timezone(timedelta(minutes=offset_minutes))
    event = SensorEvent(
        event_id=uuid.uuid4(),
        sensor_id=sensor_id,
        sensor_type=sensor_type,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=tz),
        value=value,
        unit=SENSOR_TYPES[sensor_type].unit,
        location="x",
    )
    assert parse_event(event.to_json()) == event


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_parser(raw: bytes) -> None:
    violation = None
    try:
        parse_event(raw)
    except ContractViolation as caught:
        violation = caught
    if violation is not None:
        assert violation.error_type in set(ErrorType)
        assert violation.detail


def test_an_event_dated_too_far_from_its_arrival_is_out_of_contract() -> None:
    arrived = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    bounds = EventTimeBounds(max_ahead=timedelta(minutes=10), max_behind=timedelta(days=2))

    def judged(at: datetime) -> datetime:
        return parse_event(orjson.dumps(valid(timestamp=at.isoformat())), arrived, bounds).timestamp

    for at in (arrived, arrived + timedelta(minutes=10), arrived - timedelta(days=2)):
        assert judged(at) == at
    with pytest.raises(ContractViolation, match=r"0:10:00\.000001 ahead of the event's arrival"):
        judged(arrived + timedelta(minutes=10, microseconds=1))
    with pytest.raises(ContractViolation, match="behind the event's arrival") as caught:
        judged(arrived - timedelta(days=2, seconds=1))
    assert caught.value.error_type is ErrorType.OUT_OF_CONTRACT
    far = orjson.dumps(valid(timestamp="2099-01-01T00:00:00Z"))
    assert parse_event(far).timestamp.year == 2099, "no arrival given: nothing to bound by"
    with pytest.raises(ContractViolation, match="ahead"):
        parse_event(far, arrived)  # the default bound: an hour ahead, none behind
    assert parse_event(orjson.dumps(valid(timestamp="1999-01-01T00:00:00Z")), arrived)


def test_the_bounds_come_from_contract_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ContractSettings().time_bounds == EventTimeBounds()
    monkeypatch.setenv("CONTRACT_MAX_AHEAD_SECONDS", "none")
    monkeypatch.setenv("CONTRACT_MAX_BEHIND_SECONDS", "86400")
    assert ContractSettings().time_bounds == EventTimeBounds(None, timedelta(days=1))
    monkeypatch.setenv("CONTRACT_MAX_AHEAD_SECONDS", "-5")
    with pytest.raises(ValidationError, match="greater than 0"):
        ContractSettings()
