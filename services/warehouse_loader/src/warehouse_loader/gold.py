"""Reading a window of Gold from the lake with pyarrow (the loader needs no Spark).

Gold (``Lake.gold_windows``) is Parquet written by the ``silver_to_gold`` Spark job with
the columns of ``spark_jobs.schemas.GOLD_WINDOWS``, partitioned by ``window_date``.
:data:`GOLD_SCHEMA` restates that schema in Arrow terms; a unit test holds the two
equal, so a change on the Spark side cannot drift past the loader unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from iotpipe.lake import WINDOW_PARTITIONS, Lake
from iotpipe.lakefs import filesystem, fingerprints, partition_files
from iotpipe.windows import Window

TIMESTAMP = pa.timestamp("us", tz="UTC")

GOLD_SCHEMA = pa.schema(
    [
        pa.field("sensor_id", pa.string(), nullable=False),
        pa.field("sensor_type", pa.string(), nullable=False),
        pa.field("location", pa.string()),
        pa.field("window_start", TIMESTAMP, nullable=False),
        pa.field("window_end", TIMESTAMP, nullable=False),
        pa.field("reading_count", pa.int64(), nullable=False),
        pa.field("avg_value", pa.float64()),
        pa.field("min_value", pa.float64()),
        pa.field("max_value", pa.float64()),
        pa.field("stddev_value", pa.float64()),
        pa.field("p50_value", pa.float64()),
        pa.field("p95_value", pa.float64()),
        pa.field("p99_value", pa.float64()),
        pa.field("anomaly_count", pa.int64(), nullable=False),
        pa.field("expected_count", pa.int64(), nullable=False),
        pa.field("health_pct", pa.float64(), nullable=False),
        pa.field("processing_timestamp", TIMESTAMP, nullable=False),
        pa.field("pipeline_version", pa.string(), nullable=False),
        pa.field("window_date", pa.date32(), nullable=False),
        pa.field("alert_count", pa.int64()),
    ]
)
"""``spark_jobs.schemas.GOLD_WINDOWS`` in Arrow types (timestamps are UTC instants)."""

FILE_SCHEMA = pa.schema([f for f in GOLD_SCHEMA if f.name not in WINDOW_PARTITIONS])
"""The columns inside each Parquet file, in file order (the partition column is in the path)."""

_PARQUET = ds.ParquetFileFormat(
    # Spark may write timestamps as INT96; read them at the precision Spark has.
    read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")
)


class GoldError(ValueError):
    """Gold in the lake does not have the shape the loader expects."""


@dataclass(frozen=True)
class GoldSlice:
    """The Gold rows of one window: what a load puts in the warehouse."""

    window: Window
    location: str
    """Where Gold was read (``Lake.gold_windows``)."""
    table: pa.Table
    """Rows with ``window_start`` in the window, columns of :data:`FILE_SCHEMA`."""
    days: tuple[date, ...]
    """The ``window_date`` partitions that hold those rows."""
    fingerprints: dict[str, str]
    """Per partition folder read, the digest of its files (:func:`iotpipe.lakefs.fingerprints`):
    compared with what the gate's verdict validated."""

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


def window_days(window: Window) -> list[date]:
    """The UTC dates of the window starts a window can hold (its ``window_date`` partitions)."""
    first = window.start.astimezone(UTC).date()
    last = (window.end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def partition_folder(day: date) -> str:
    """A day's partition folder, relative to Gold's location."""
    return f"{WINDOW_PARTITIONS[0]}={day.isoformat()}"


def partition_path(location: str, day: date) -> str:
    return f"{location}/{partition_folder(day)}"


def gold_fingerprints(lake: Lake, window: Window) -> dict[str, str]:
    """What :func:`read_gold` would read for ``window`` now, as its ``fingerprints``: a
    listing of the partitions' files, no data read."""
    fs, root = filesystem(lake.gold_windows)
    folders = [partition_folder(day) for day in window_days(window)]
    return fingerprints(root, partition_files(fs, root, folders))


def conform(table: pa.Table, where: str) -> pa.Table:
    """Select, order and type the file columns; a missing nullable column becomes nulls."""
    columns = []
    for field in FILE_SCHEMA:
        if field.name not in table.column_names:
            if not field.nullable:
                raise GoldError(f"Gold at {where} has no column {field.name!r}")
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            # Spark's TimestampType is an instant; a zone-less file stores it in UTC.
            column = column.cast(pa.timestamp("us")).cast(field.type)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=FILE_SCHEMA)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def within(table: pa.Table, window: Window) -> pa.Table:
    """The rows whose ``window_start`` lies in ``[window.start, window.end)`` (``table``
    itself when that is all of them: filtering copies every column)."""
    start = pa.scalar(_naive_utc(window.start), pa.timestamp("us")).cast(TIMESTAMP)
    end = pa.scalar(_naive_utc(window.end), pa.timestamp("us")).cast(TIMESTAMP)
    starts = table["window_start"]
    inside = pc.and_(pc.greater_equal(starts, start), pc.less(starts, end))
    return table if pc.all(inside).as_py() else table.filter(inside)


def read_gold(lake: Lake, window: Window) -> GoldSlice:
    """Read the window's Gold rows: only the ``window_date`` partitions it touches."""
    location = lake.gold_windows
    fs, root = filesystem(location)
    parts: list[pa.Table] = []
    days: list[date] = []
    folders = {partition_folder(day): day for day in window_days(window)}
    found = partition_files(fs, root, folders)
    for folder, entries in found.items():
        path = f"{root}/{folder}"
        files = [entry.path for entry in entries]
        table = within(
            conform(ds.dataset(files, filesystem=fs, format=_PARQUET).to_table(), path), window
        )
        if table.num_rows:
            parts.append(table)
            days.append(folders[folder])
    table = pa.concat_tables(parts) if parts else FILE_SCHEMA.empty_table()
    return GoldSlice(
        window=window,
        location=location,
        table=table,
        days=tuple(days),
        fingerprints=fingerprints(root, found),
    )
