"""Classify raw ``sensor-events`` records: a Bronze row, or a dead letter with a reason.

The event contract (:func:`iotpipe.contract.parse_event`) is the only judge. Calling it
for every record would cost ~30 µs of Python per event, so the job has two paths that
share one outcome:

- **fast path** (JVM only): records in the canonical wire shape that the contract
  certainly accepts: a flat JSON object without escapes, every field of the expected
  JSON type, a canonical UUID, an ISO-8601 timestamp with an offset, a known sensor
  type with its unit, a finite value, a supported schema version. Every rule below is
  derived from :class:`~iotpipe.contract.SensorEvent`, :data:`~iotpipe.contract.SENSOR_TYPES`
  and the field constraints; nothing is restated.
- **slow path** (Python, an Arrow UDF): every other record goes through
  :func:`~iotpipe.contract.parse_event` itself, which decides valid (normalised values)
  or invalid (:class:`~iotpipe.contract.ErrorType` and a readable detail).

The fast path only ever *accepts*; anything it is unsure of takes the slow path. So
the split is an optimisation, not a second definition of the contract (the agreement
test runs the same corpus through both and compares).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from enum import Enum
from typing import Any, Final, get_args, get_origin

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf
from pyspark.sql import types as t

from iotpipe.contract import (
    SENSOR_TYPES,
    ContractViolation,
    SensorEvent,
    parse_event,
    spark_schema,
)
from spark_jobs.schemas import BRONZE

EVENT_FIELDS: Final = tuple(SensorEvent.model_fields)
ERROR_TYPE: Final = "error_type"
ERROR_DETAIL: Final = "error_detail"

SOURCE_COLUMNS: Final = ("value_bytes", "topic", "partition", "offset", "timestamp_kafka")
""":data:`CLASSIFIED`'s columns after the verdict: the original bytes and where the
record came from."""

_CORRUPT: Final = "_corrupt_record"
_JSON_OPTIONS: Final = {
    # Be at least as strict as orjson, so that the fast path never accepts what it rejects.
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": _CORRUPT,
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
    "allowComments": "false",
    "allowUnquotedFieldNames": "false",
    "allowNumericLeadingZeros": "false",
    "allowBackslashEscapingAnyCharacter": "false",
    "allowUnquotedControlChars": "false",
}

_UUID: Final = "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"
_ISO_INSTANT: Final = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# Spark reads any JSON token into a string column as its text; a string that could be a
# number, boolean, object or array (or has whitespace the contract would strip) is left
# to the contract. Printable ASCII at both ends, not starting like a non-string token.
_PLAIN_TEXT: Final = r"^[!-~&&[^0-9{\[\-]](.*[!-~])?$"
_EXPONENT_OVERFLOW: Final = r"[:,\[]\s*-?[0-9.]+[eE][+-]?[0-9]{3}"
"""A number orjson may reject as infinite (``1e400``), possibly in an ignored extra field."""


def _bronze_type(name: str) -> t.DataType:
    return BRONZE[name].dataType


def _json_schema() -> t.StructType:
    return t.StructType([*spark_schema().fields, t.StructField(_CORRUPT, t.StringType(), True)])


def _constraint(info: FieldInfo, kind: type) -> Any:
    for item in info.metadata:
        if isinstance(item, kind):
            return item
    return None


def _base_annotation(info: FieldInfo) -> tuple[Any, bool]:
    """The field's type without ``| None``, and whether null is allowed."""
    annotation = info.annotation
    if get_origin(annotation) is not None:
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0], len(args) < len(get_args(annotation))
    return annotation, False


def _field_rule(name: str, info: FieldInfo) -> tuple[Column, Column]:
    """(certainly valid, Bronze value) for one contract field read from the JSON struct."""
    annotation, nullable = _base_annotation(info)
    column = sf.col("_json")[name]
    if annotation is uuid.UUID:
        ok, value = column.rlike(_UUID), sf.lower(column)
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        ok, value = column.isin([member.value for member in annotation]), column
    elif annotation in (datetime, AwareDatetime):
        parsed = sf.try_to_timestamp(column)
        ok, value = column.rlike(_ISO_INSTANT) & parsed.isNotNull(), parsed
    elif annotation is float:
        ok = ~sf.isnan(column) & (sf.abs(column) != sf.lit(float("inf")))
        value = column
    elif annotation is int:
        ok, value = sf.lit(True), column
        if (low := _constraint(info, Ge)) is not None:
            ok = ok & (column >= sf.lit(low.ge))
        if (high := _constraint(info, Le)) is not None:
            ok = ok & (column <= sf.lit(high.le))
    elif annotation is str:
        ok, value = column.rlike(_PLAIN_TEXT) & ~column.isin("true", "false"), column
        if (shortest := _constraint(info, MinLen)) is not None:
            ok = ok & (sf.length(column) >= sf.lit(shortest.min_length))
        if (longest := _constraint(info, MaxLen)) is not None:
            ok = ok & (sf.length(column) <= sf.lit(longest.max_length))
    else:  # a new contract field type: teach the fast path, or it would guess
        raise TypeError(f"fast path: no rule for contract field {name!r} of type {annotation!r}")
    # A missing optional field is fine (null); a missing field with a default is not
    # certain (explicit null is a type error, absence is the default): slow path.
    present = column.isNotNull()
    certain = (ok & present) | column.isNull() if nullable else ok & present
    return sf.coalesce(certain, sf.lit(False)), value.cast(_bronze_type(name))


def _unit_rule() -> Column:
    """The contract's cross-field rule: the unit is the sensor type's unit."""
    expected = sf.create_map(
        *[sf.lit(part) for kind, spec in SENSOR_TYPES.items() for part in (kind.value, spec.unit)]
    )
    return sf.coalesce(
        expected[sf.col("_json")["sensor_type"]] == sf.col("_json")["unit"], sf.lit(False)
    )


def prepare(raw: DataFrame) -> DataFrame:
    """Parse in the JVM: ``_fast`` (certainly valid), the fast path's event values
    (meaningful where ``_fast``) and the source columns of :data:`CLASSIFIED`, with the
    original bytes kept only where the fast path is unsure (the rest never needs them)."""
    parse, check, keep = _prepare_columns()
    return raw.select(*parse).select(*check).select(*keep)


@functools.cache
def _prepare_columns() -> tuple[list[Column], list[Column], list[Column]]:
    """:func:`prepare`'s three projections. Built once per process: the rules take
    hundreds of py4j calls (~0.3 s), and the streaming job prepares every micro-batch."""
    value = sf.col("value")
    text = value.cast("string")
    shape = (
        sf.is_valid_utf8(value)
        & text.startswith("{")
        # one flat object, nothing after it (and ASCII: locate counts characters)
        & (sf.locate("}", text) == sf.octet_length(value))
        & ~text.contains("\\")  # no escapes: orjson and Jackson differ on some
        & ~text.rlike(_EXPONENT_OVERFLOW)
    )
    parse = [
        value.alias("_raw"),  # (the event has a field named value)
        sf.col("topic"),
        sf.col("partition"),
        sf.col("offset"),
        sf.col("timestamp").alias("timestamp_kafka"),
        shape.alias("_shape"),
        sf.from_json(text, _json_schema(), _JSON_OPTIONS).alias("_json"),
    ]
    rules = [_field_rule(name, info) for name, info in SensorEvent.model_fields.items()]
    fast = (
        sf.coalesce(sf.col("_shape"), sf.lit(False))
        & sf.col("_json")[_CORRUPT].isNull()
        & _unit_rule()
    )
    for ok, _ in rules:
        fast = fast & ok
    values = [column.alias(name) for (_, column), name in zip(rules, EVENT_FIELDS, strict=True)]
    sources = [sf.col(name) for name in SOURCE_COLUMNS[1:]]
    check = [*values, sf.col("_raw"), *sources, fast.alias("_fast")]
    keep = [
        *(sf.col(name) for name in EVENT_FIELDS),
        sf.when(sf.col("_fast"), sf.lit(None)).otherwise(sf.col("_raw")).alias("value_bytes"),
        *sources,
        sf.col("_fast"),
    ]
    return parse, check, keep


VERDICT: Final = t.StructType(
    [
        *(BRONZE[name] for name in EVENT_FIELDS),
        t.StructField(ERROR_TYPE, t.StringType(), True),
        t.StructField(ERROR_DETAIL, t.StringType(), True),
    ]
)
"""The outcome for one record: the normalised event (null when invalid), the error (null
when valid)."""

CLASSIFIED: Final = t.StructType(
    [
        *VERDICT.fields,
        t.StructField("value_bytes", t.BinaryType(), True),
        t.StructField("topic", t.StringType(), False),
        t.StructField("partition", t.IntegerType(), False),
        t.StructField("offset", t.LongType(), False),
        t.StructField("timestamp_kafka", t.TimestampType(), True),
    ]
)
"""Every input record after classification: its :data:`VERDICT`, the original bytes (kept
for the records the contract judged: dead letters carry them; null for the fast path's)
and its Kafka coordinates."""


_ARROW_EVENT_TYPES: Final = {
    "timestamp": pa.timestamp("us", tz="UTC"),
    "value": pa.float64(),
    "schema_version": pa.int64(),
}


def _judge(raw: bytes) -> tuple[dict[str, Any] | None, ContractViolation | None]:
    try:
        event = parse_event(raw)
    except ContractViolation as violation:
        return None, violation
    return {name: _plain(getattr(event, name)) for name in EVENT_FIELDS}, None


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def judge_values(values: pa.Array) -> pa.Array:
    """The slow path: :func:`parse_event` on every record that is not null (a
    :data:`VERDICT` each; a null stays null: the fast path accepted that record)."""
    valid = values.is_valid()
    present = pc.indices_nonzero(valid)
    verdicts = [_judge(raw) for raw in values.take(present).to_pylist()]
    columns = [
        pa.array(
            [event[name] if event else None for event, _ in verdicts],
            _ARROW_EVENT_TYPES.get(name, pa.string()),
        )
        for name in EVENT_FIELDS
    ]
    columns.append(pa.array([e.error_type.value if e else None for _, e in verdicts], pa.string()))
    columns.append(pa.array([e.detail if e else None for _, e in verdicts], pa.string()))
    judged = pa.StructArray.from_arrays(columns, names=VERDICT.names)
    if len(present) == len(values):
        return judged
    # back to one verdict per input row: row i takes judged[slot[i]], or null
    slot = np.zeros(len(values), dtype=np.int64)
    slot[present.to_numpy()] = np.arange(len(present))
    return judged.take(pa.array(slot, mask=~valid.to_numpy(zero_copy_only=False)))


def classify(raw: DataFrame) -> DataFrame:
    """Every record of a Kafka source frame, classified (schema :data:`CLASSIFIED`), in
    one pass: :func:`prepare`'s values where the fast path accepted the record, the
    contract's verdict (:func:`judge_values`, an Arrow UDF) everywhere else. The UDF
    sees every row, but only the bytes of the records the fast path did not accept
    (usually few, often none); the others reach it as nulls and cost next to nothing.
    Filter the result on ``error_type``: Bronze is ``error_type IS NULL``, the DLQ the
    opposite. A null value (a tombstone) is judged as empty bytes, like any other record
    that is not JSON.
    """
    judge, classified = _classify_columns()
    return prepare(raw).select("*", judge).select(*classified)


@functools.cache
def _classify_columns() -> tuple[Column, list[Column]]:
    """:func:`classify`'s projections after :func:`prepare` (built once per process)."""
    slow = sf.arrow_udf(judge_values, VERDICT)  # type: ignore[call-overload]  # stubs omit structs
    # Deterministic in fact, but marked otherwise as an optimiser barrier: Spark must not
    # push a later filter on the verdict below the UDF (it would run the UDF twice).
    slow = slow.asNondeterministic()
    fast = sf.col("_fast")
    unsure = sf.when(~fast, sf.coalesce(sf.col("value_bytes"), sf.lit(b"")))
    verdict = sf.col("_verdict")
    classified = [
        *(
            sf.when(fast, sf.col(name)).otherwise(verdict[name]).alias(name)
            for name in EVENT_FIELDS
        ),
        verdict[ERROR_TYPE].alias(ERROR_TYPE),
        verdict[ERROR_DETAIL].alias(ERROR_DETAIL),
        *(sf.col(name) for name in SOURCE_COLUMNS),
    ]
    return slow(unsure).alias("_verdict"), classified
