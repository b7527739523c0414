"""The event contract: one definition of a sensor reading, used everywhere.

The producer serialises :class:`SensorEvent`, the streaming job derives its fast
path's Spark schema and rules from it (:mod:`spark_jobs.classify`) and judges every
other record with :func:`parse_event`, the JSON Schema file is generated from it
(:func:`json_schema`), and the quality suites read the physical bounds from
:data:`SENSOR_TYPES`. Nothing else in the project restates these facts.

Compatibility rule: new fields are added as optional (nullable, default ``None``);
readers tolerate missing columns. Bump :data:`SCHEMA_VERSION` when a field is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final
from uuid import UUID

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1
"""The newest schema version this code writes; readers accept 1..SCHEMA_VERSION."""


class SensorType(StrEnum):
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    PRESSURE = "pressure"
    VIBRATION = "vibration"


@dataclass(frozen=True, slots=True)
class SensorTypeSpec:
    """What the contract says about one sensor type."""

    unit: str
    min_value: float
    """Lowest physically plausible reading; below it Silver flags ``is_out_of_range``."""
    max_value: float
    """Highest physically plausible reading; above it Silver flags ``is_out_of_range``."""

    def in_range(self, value: float) -> bool:
        return self.min_value <= value <= self.max_value


SENSOR_TYPES: Final = MappingProxyType(
    {
        SensorType.TEMPERATURE: SensorTypeSpec(unit="celsius", min_value=-40.0, max_value=85.0),
        SensorType.HUMIDITY: SensorTypeSpec(unit="percent", min_value=0.0, max_value=100.0),
        SensorType.PRESSURE: SensorTypeSpec(unit="hPa", min_value=300.0, max_value=1100.0),
        SensorType.VIBRATION: SensorTypeSpec(unit="g", min_value=0.0, max_value=10.0),
    }
)
"""Unit and physical bounds per sensor type: data, read by every layer."""


class ErrorType(StrEnum):
    """Why an input record was dead-lettered instead of landing in Bronze."""

    MALFORMED_JSON = "malformed_json"
    """The bytes are not a JSON document (or not UTF-8)."""
    SCHEMA_MISMATCH = "schema_mismatch"
    """JSON, but not an object, or a field has the wrong type."""
    MISSING_REQUIRED = "missing_required"
    """A required field is absent or null."""
    OUT_OF_CONTRACT = "out_of_contract"
    """Well-typed, but breaks a contract rule: unknown sensor type, wrong unit,
    non-finite value, unsupported schema version, malformed id or timestamp, an event
    time too far from its arrival (:class:`EventTimeBounds`)."""


class SensorEvent(BaseModel):
    """One reading from one sensor, as published on ``sensor-events``.

    Physical plausibility (:data:`SENSOR_TYPES` bounds) is *not* a contract rule:
    an implausible reading is valid data that Silver flags as ``is_out_of_range``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    event_id: UUID = Field(description="Unique id of the reading (UUID).")
    sensor_id: str = Field(
        min_length=1, max_length=128, description="Kafka key; stable per sensor."
    )
    sensor_type: SensorType
    timestamp: AwareDatetime = Field(description="Event time, ISO-8601 with offset; stored as UTC.")
    value: float = Field(allow_inf_nan=False, description="The reading, in `unit`; finite.")
    unit: str = Field(min_length=1, max_length=32)
    location: str = Field(min_length=1, max_length=128)
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1, le=SCHEMA_VERSION)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
            raise ValueError("timestamp is out of range once converted to UTC") from None

    @model_validator(mode="after")
    def _unit_matches_type(self) -> SensorEvent:
        expected = SENSOR_TYPES[self.sensor_type].unit
        if self.unit != expected:
            raise ValueError(
                f"unit {self.unit!r} does not match sensor_type "
                f"{self.sensor_type.value!r} (expected {expected!r})"
            )
        return self

    @field_serializer("timestamp")
    def _iso_utc(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def to_json(self) -> bytes:
        """The wire format: compact UTF-8 JSON."""
        return orjson.dumps(self.model_dump(mode="json"))

    @property
    def spec(self) -> SensorTypeSpec:
        return SENSOR_TYPES[self.sensor_type]


REQUIRED_FIELDS: Final = tuple(
    name for name, field in SensorEvent.model_fields.items() if field.is_required()
)
"""Fields whose absence (or null) makes a record ``missing_required``."""


class ContractViolation(ValueError):
    """A record that does not satisfy the contract, with the DLQ classification."""

    def __init__(self, error_type: ErrorType, detail: str) -> None:
        super().__init__(f"{error_type.value}: {detail}")
        self.error_type = error_type
        self.detail = detail


_MISSING_ERRORS: Final = frozenset({"missing"})
_TYPE_ERRORS: Final = frozenset(
    {
        "model_type",
        "model_attributes_type",
        "dict_type",
        "string_type",
        "float_type",
        "float_parsing",
        "int_type",
        "int_parsing",
        "int_from_float",
        "bool_type",
        "uuid_type",
        "datetime_type",
        "string_sub_type",
    }
)


_JSON_TYPES: Final = {
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "record"
    return f"{where}: {error['msg']}"


def classify_validation_error(exc: ValidationError) -> ContractViolation:
    """Map pydantic's errors onto the DLQ's error types (the most basic one wins)."""
    errors = exc.errors(include_url=False)
    kinds = {error["type"] for error in errors}
    detail = "; ".join(_describe(error) for error in errors)
    if "json_invalid" in kinds or "json_type" in kinds:
        return ContractViolation(ErrorType.MALFORMED_JSON, detail)
    if kinds & _MISSING_ERRORS:
        return ContractViolation(ErrorType.MISSING_REQUIRED, detail)
    if kinds & _TYPE_ERRORS:
        return ContractViolation(ErrorType.SCHEMA_MISMATCH, detail)
    return ContractViolation(ErrorType.OUT_OF_CONTRACT, detail)


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    """How far an event's time may lie from its arrival: the time of its Kafka record.

    An event from a clock far ahead would pin freshness to a future hour, move the
    stream's watermark past every real minute and make partitions no job processes; so
    one more than ``max_ahead`` ahead breaks the contract. ``max_behind`` bounds the
    other side (None: no bound; backfills and CSV replays bring old readings on purpose).
    """

    max_ahead: timedelta | None = timedelta(hours=1)
    max_behind: timedelta | None = None

    def check(self, timestamp: datetime, arrived: datetime) -> None:
        """Raise :class:`ContractViolation` if ``timestamp`` is out of bounds of ``arrived``."""
        if self.max_ahead is not None and timestamp - arrived > self.max_ahead:
            raise ContractViolation(
                ErrorType.OUT_OF_CONTRACT,
                f"timestamp {_iso(timestamp)} is {timestamp - arrived} ahead of the "
                f"event's arrival at {_iso(arrived)} (at most {self.max_ahead} is allowed)",
            )
        if self.max_behind is not None and arrived - timestamp > self.max_behind:
            raise ContractViolation(
                ErrorType.OUT_OF_CONTRACT,
                f"timestamp {_iso(timestamp)} is {arrived - timestamp} behind the "
                f"event's arrival at {_iso(arrived)} (at most {self.max_behind} is allowed)",
            )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


DEFAULT_TIME_BOUNDS: Final = EventTimeBounds()


def parse_event(
    raw: bytes | str,
    arrived: datetime | None = None,
    bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS,
) -> SensorEvent:
    """Parse wire bytes into a :class:`SensorEvent` or raise :class:`ContractViolation`;
    with ``arrived`` (the Kafka record's time), its event time must be within ``bounds``."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractViolation(ErrorType.MALFORMED_JSON, f"not valid JSON: {exc}") from None
    return event_from_document(document, arrived, bounds)


def event_from_document(
    document: object,
    arrived: datetime | None = None,
    bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS,
) -> SensorEvent:
    """Validate an already decoded JSON document (what :func:`parse_event` does after
    decoding), raising :class:`ContractViolation`; for callers that change it first."""
    if not isinstance(document, dict):
        raise ContractViolation(
            ErrorType.SCHEMA_MISMATCH, f"expected a JSON object, got {type(document).__name__}"
        )
    missing = [name for name in REQUIRED_FIELDS if document.get(name) is None]
    if missing:
        raise ContractViolation(
            ErrorType.MISSING_REQUIRED, "missing required field(s): " + ", ".join(missing)
        )
    if not isinstance(document["timestamp"], str):  # pydantic would read a number as Unix time
        raise ContractViolation(
            ErrorType.SCHEMA_MISMATCH,
            "timestamp: expected an ISO-8601 string, got a JSON "
            + _JSON_TYPES.get(type(document["timestamp"]), "value"),
        )
    try:
        event = SensorEvent.model_validate(document)
    except ValidationError as exc:
        raise classify_validation_error(exc) from None
    if arrived is not None:
        bounds.check(event.timestamp, arrived)
    return event


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the wire format (draft 2020-12), derived from the model."""
    schema = SensorEvent.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://iotpipe.dev/schemas/sensor-event/v{SCHEMA_VERSION}.json"
    return schema


def json_schema_text() -> str:
    return (
        orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        + "\n"
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
