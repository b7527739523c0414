"""Classify raw ``sensor-events`` records: a Bronze row, or a dead letter with a reason.

The event contract (:func:`iotpipe.contract.parse_event`) is the only judge. Calling it
for every record would cost ~30 µs of Python per event, so the job has two paths that
share one outcome:

- **fast path** (JVM only): records whose meaning is certain. A Java UDF
  (:data:`SCANNER_CLASS`, ``services/spark_jobs/jvm``) reads the record in one pass: a
  flat JSON object of printable ASCII without escapes, each contract field with a token of
  its kind (a canonical UUID, an ISO-8601 timestamp with an offset, a number, ...); then
  Spark expressions check the contract's own rules on the values: a known sensor type with
  its unit, lengths, the schema version's range, the event time within its
  :class:`~iotpipe.contract.EventTimeBounds` of the Kafka record's time. The scanner's field kinds and every rule
  are derived from :class:`~iotpipe.contract.SensorEvent`,
  :data:`~iotpipe.contract.SENSOR_TYPES` and the field constraints; nothing is restated.
- **slow path** (Python, an Arrow UDF): every other record goes through
  :func:`~iotpipe.contract.parse_event` itself, which decides valid (normalised values)
  or invalid (:class:`~iotpipe.contract.ErrorType` and a readable detail).

The fast path only ever *accepts*; anything it is unsure of takes the slow path. So
the split is an optimisation, not a second definition of the contract (the agreement
test runs the same corpus through both and compares). :func:`classify` runs both in one
pass; the streaming job runs :func:`prepare` alone and :func:`judge` only on the records
the fast path left (see :mod:`spark_jobs.bronze_stream`).
"""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Final, get_args, get_origin

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from annotated_types import Ge, Le, MaxLen, MinLen
from py4j.java_gateway import JavaPackage
from pydantic import AwareDatetime
from pydantic.fields import FieldInfo
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql import types as t

from iotpipe.contract import (
    DEFAULT_TIME_BOUNDS,
    SENSOR_TYPES,
    ContractViolation,
    EventTimeBounds,
    SensorEvent,
    parse_event,
)
from iotpipe.dlq import HEADER_REPLAY_ID
from spark_jobs.schemas import BRONZE

EVENT_FIELDS: Final = tuple(SensorEvent.model_fields)
ERROR_TYPE: Final = "error_type"
ERROR_DETAIL: Final = "error_detail"

SOURCE_COLUMNS: Final = (
    "value_bytes",
    "topic",
    "partition",
    "offset",
    "timestamp_kafka",
    "replay_id",
)
""":data:`CLASSIFIED`'s columns after the verdict: the original bytes, where the record came
from, and the replay job that sent it (the ``dlq_replay_id`` header; null without one)."""

SCANNER_CLASS: Final = "io.iotpipe.spark.FlatJsonScanner"
"""The fast path's parser, a Java UDF (``services/spark_jobs/jvm``): one pass over the bytes
that reads a flat JSON object's fields where their meaning is certain."""


def _bronze_type(name: str) -> t.DataType:
    return BRONZE[name].dataType


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


def _scan_kind(name: str, annotation: Any) -> tuple[str, t.DataType]:
    """The scanner's kind for a contract field type, and the type it returns."""
    if annotation is uuid.UUID:
        return "uuid", t.StringType()
    if isinstance(annotation, type) and issubclass(annotation, Enum | str):
        return "string", t.StringType()
    if annotation in (datetime, AwareDatetime):
        return "instant", t.LongType()  # microseconds since the epoch
    if annotation is float:
        return "double", t.DoubleType()
    if annotation is int:
        return "long", t.LongType()
    # a new contract field type: teach the fast path, or it would guess
    raise TypeError(f"fast path: no rule for contract field {name!r} of type {annotation!r}")


def _scanner() -> Column:
    """The scanner (:data:`SCANNER_CLASS`) for the contract's fields, as a function of the
    record's bytes: a struct of ``certain`` and one value per contract field."""
    from pyspark.sql.classic.column import Column as ClassicColumn
    from pyspark.sql.classic.column import _to_java_column

    fields, spec = [t.StructField("certain", t.BooleanType(), False)], []
    for name, info in SensorEvent.model_fields.items():
        annotation, nullable = _base_annotation(info)
        kind, data_type = _scan_kind(name, annotation)
        spec.append(f"{name}:{kind}{'?' if nullable else ''}")
        fields.append(t.StructField(name, data_type, True))
    spark = SparkSession.active()
    jvm: Any = spark._jvm
    returns = spark._jsparkSession.parseDataType(t.StructType(fields).json())
    scanner_class = getattr(jvm, SCANNER_CLASS)
    if isinstance(scanner_class, JavaPackage):  # py4j's answer for a class it cannot find
        raise RuntimeError(
            f"{SCANNER_CLASS} is not on Spark's classpath: start Spark with "
            "iotpipe.spark.session(), or add iotpipe-spark-jobs.jar (`iotpipe jars` builds it)"
        )
    scanner = scanner_class.udf(",".join(spec), returns)  # (nondeterministic: see its doc)
    arguments = jvm.org.apache.spark.api.python.PythonUtils.toSeq([_to_java_column("value")])
    return ClassicColumn(scanner.apply(arguments))


def _field_rule(name: str, info: FieldInfo) -> tuple[Column, Column]:
    """(certainly valid, Bronze value) for one contract field read by the scanner."""
    annotation, nullable = _base_annotation(info)
    column = sf.col("_scan")[name]
    ok, value = sf.lit(True), column
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        ok = column.isin([member.value for member in annotation])
    elif annotation in (datetime, AwareDatetime):
        value = sf.timestamp_micros(column)
    elif annotation is int:
        if (low := _constraint(info, Ge)) is not None:
            ok = ok & (column >= sf.lit(low.ge))
        if (high := _constraint(info, Le)) is not None:
            ok = ok & (column <= sf.lit(high.le))
    elif annotation is str:
        if (shortest := _constraint(info, MinLen)) is not None:
            ok = ok & (sf.length(column) >= sf.lit(shortest.min_length))
        if (longest := _constraint(info, MaxLen)) is not None:
            ok = ok & (sf.length(column) <= sf.lit(longest.max_length))
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
        expected[sf.col("_scan")["sensor_type"]] == sf.col("_scan")["unit"], sf.lit(False)
    )


def _time_rule(bounds: EventTimeBounds) -> Column:
    """The contract's event-time bounds, against the Kafka record's time (a record without
    one is left to the contract)."""
    offset = sf.col("_scan")["timestamp"] - sf.unix_micros(sf.col("timestamp_kafka"))
    ok = sf.lit(True)
    if bounds.max_ahead is not None:
        ok = ok & (offset <= sf.lit(_micros(bounds.max_ahead)))
    if bounds.max_behind is not None:
        ok = ok & (offset >= sf.lit(-_micros(bounds.max_behind)))
    return sf.coalesce(ok, sf.lit(False))


def _micros(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def prepare(raw: DataFrame, bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS) -> DataFrame:
    """Parse in the JVM: ``_fast`` (certainly valid), the fast path's event values
    (meaningful where ``_fast``) and the source columns of :data:`CLASSIFIED`, with the
    original bytes kept only where the fast path is unsure (the rest never needs them)."""
    parse, check = _prepare_columns(bounds, "headers" in raw.columns)
    return raw.select(*parse).select(*check)


def replay_id(headers: bool) -> Column:
    """The ``dlq_replay_id`` header's value as a string (null without it, or without the
    source's ``headers`` column: ``includeHeaders`` off)."""
    if not headers:
        return sf.lit(None).cast(t.StringType())
    found = sf.filter("headers", lambda header: header["key"] == sf.lit(HEADER_REPLAY_ID))
    return sf.get(found, 0)["value"].cast(t.StringType())


@functools.cache
def _prepare_columns(
    bounds: EventTimeBounds, headers: bool = False
) -> tuple[list[Column], list[Column]]:
    """:func:`prepare`'s two projections. Built once per process: the rules take
    hundreds of py4j calls (~0.3 s), and the streaming job prepares every micro-batch."""
    parse = [
        sf.col("value").alias("_raw"),  # (the event has a field named value)
        sf.col("topic"),
        sf.col("partition"),
        sf.col("offset"),
        sf.col("timestamp").alias("timestamp_kafka"),
        replay_id(headers).alias("replay_id"),
        _scanner().alias("_scan"),
    ]
    rules = [_field_rule(name, info) for name, info in SensorEvent.model_fields.items()]
    fast = sf.coalesce(sf.col("_scan")["certain"], sf.lit(False)) & _unit_rule()
    fast = fast & _time_rule(bounds)
    for ok, _ in rules:
        fast = fast & ok
    values = [column.alias(name) for (_, column), name in zip(rules, EVENT_FIELDS, strict=True)]
    check = [
        *values,
        sf.when(fast, sf.lit(None)).otherwise(sf.col("_raw")).alias("value_bytes"),
        *(sf.col(name) for name in SOURCE_COLUMNS[1:]),
        fast.alias("_fast"),
    ]
    return parse, check


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
        t.StructField("replay_id", t.StringType(), True),
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


def _judge(
    raw: bytes, arrived: datetime | None, bounds: EventTimeBounds
) -> tuple[dict[str, Any] | None, ContractViolation | None]:
    if arrived is not None and arrived.tzinfo is None:  # Arrow's, in the session's zone: UTC
        arrived = arrived.replace(tzinfo=UTC)
    try:
        event = parse_event(raw, arrived, bounds)
    except ContractViolation as violation:
        return None, violation
    return {name: _plain(getattr(event, name)) for name in EVENT_FIELDS}, None


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def judge_values(
    values: pa.Array, arrived: pa.Array, bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS
) -> pa.Array:
    """The slow path: :func:`parse_event` on every record that is not null, with its
    arrival (the Kafka record's time), a :data:`VERDICT` each; a null stays null: the fast
    path accepted that record."""
    valid = values.is_valid()
    present = pc.indices_nonzero(valid)
    verdicts = [
        _judge(raw, at, bounds)
        for raw, at in zip(
            values.take(present).to_pylist(), arrived.take(present).to_pylist(), strict=True
        )
    ]
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


def classify(raw: DataFrame, bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS) -> DataFrame:
    """Every record of a Kafka source frame, classified (schema :data:`CLASSIFIED`), in
    one pass: :func:`prepare`'s values where the fast path accepted the record, the
    contract's verdict (:func:`judge_values`, an Arrow UDF) everywhere else. The UDF
    sees every row, but only the bytes of the records the fast path did not accept
    (usually few, often none); the others reach it as nulls and cost next to nothing.
    Filter the result on ``error_type``: Bronze is ``error_type IS NULL``, the DLQ the
    opposite. A null value (a tombstone) is judged as empty bytes, like any other record
    that is not JSON.
    """
    return judge(prepare(raw, bounds), bounds)


def judge(prepared: DataFrame, bounds: EventTimeBounds = DEFAULT_TIME_BOUNDS) -> DataFrame:
    """:func:`classify`'s second half, over :func:`prepare`'s output (schema
    :data:`CLASSIFIED`): the contract judges the records the fast path did not accept."""
    verdict, classified = _classify_columns(bounds)
    return prepared.select("*", verdict).select(*classified)


@functools.cache
def _classify_columns(bounds: EventTimeBounds) -> tuple[Column, list[Column]]:
    """:func:`judge`'s projections (built once per process)."""

    def judge_batch(values: pa.Array, arrived: pa.Array) -> pa.Array:
        return judge_values(values, arrived, bounds)

    slow = sf.arrow_udf(judge_batch, VERDICT)  # type: ignore[call-overload]  # stubs omit structs
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
    return slow(unsure, sf.col("timestamp_kafka")).alias("_verdict"), classified
