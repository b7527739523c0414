"""The warehouse model: a star schema around the Gold 5-minute windows, plus bookkeeping.

- ``fact_sensor_readings``: one row per sensor per 5-minute window, exactly Gold's
  columns (less the partition column), so also Gold's lineage (``processing_timestamp``,
  ``pipeline_version``: which run wrote the row); key (``window_start``, ``sensor_id``).
- ``dim_sensors``: one row per sensor, its type, unit and newest location, and the first
  and last window seen.
- ``dim_time``: one row per 5-minute window start, with its calendar attributes.
- ``load_history``: every load asked for, with its outcome.
- ``schema_migrations``: which versions of this model are applied.

Tables are data here; :mod:`warehouse_loader.dialects` renders them for PostgreSQL and
Redshift (where the ``distkey``/``sortkey`` hints apply). Timestamps are UTC, stored
without a zone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from warehouse_loader.gold import FILE_SCHEMA


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str
    references: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    distkey: str | None = None
    """Redshift: distribute rows by this column (DISTSTYLE KEY)."""
    replicate: bool = False
    """Redshift: a copy on every node (DISTSTYLE ALL), for small dimensions."""
    sortkey: tuple[str, ...] = ()
    """Redshift: SORTKEY; PostgreSQL: an index, unless the primary key starts with it."""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


VARCHAR_LENGTHS = {"sensor_id": 128, "sensor_type": 32, "location": 256, "pipeline_version": 64}


def _sql_type(name: str, arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type):
        return f"VARCHAR({VARCHAR_LENGTHS[name]})"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_int64(arrow_type):
        return "BIGINT"
    if pa.types.is_float64(arrow_type):
        return "DOUBLE PRECISION"
    raise TypeError(f"no warehouse type for Gold column {name} ({arrow_type})")


GOLD_COLUMNS = tuple(
    Column(f.name, _sql_type(f.name, f.type), nullable=f.nullable) for f in FILE_SCHEMA
)
"""Gold's file columns in file order (Redshift's Parquet COPY maps columns by position)."""

STAGE_GOLD = Table("stage_gold", GOLD_COLUMNS)
"""Temporary, per load: the window's Gold rows before they replace the warehouse's."""

STAGE_SENSORS = "stage_sensors"
"""Temporary, per load: one row per sensor of the window, merged into ``dim_sensors``."""

DIM_SENSORS = Table(
    "dim_sensors",
    (
        Column("sensor_id", "VARCHAR(128)", nullable=False),
        Column("sensor_type", "VARCHAR(32)", nullable=False),
        Column("unit", "VARCHAR(16)"),
        Column("location", "VARCHAR(256)"),
        Column("first_window_start", "TIMESTAMP", nullable=False),
        Column("last_window_start", "TIMESTAMP", nullable=False),
    ),
    primary_key=("sensor_id",),
    replicate=True,
    sortkey=("sensor_id",),
)

DIM_TIME = Table(
    "dim_time",
    (
        Column("window_start", "TIMESTAMP", nullable=False),
        Column("window_end", "TIMESTAMP", nullable=False),
        Column("calendar_date", "DATE", nullable=False),
        Column("calendar_year", "SMALLINT", nullable=False),
        Column("calendar_quarter", "SMALLINT", nullable=False),
        Column("calendar_month", "SMALLINT", nullable=False),
        Column("day_of_month", "SMALLINT", nullable=False),
        Column("day_of_week", "SMALLINT", nullable=False),
        Column("hour_of_day", "SMALLINT", nullable=False),
        Column("minute_of_hour", "SMALLINT", nullable=False),
        Column("is_weekend", "BOOLEAN", nullable=False),
    ),
    primary_key=("window_start",),
    replicate=True,
    sortkey=("window_start",),
)

ADDED_GOLD_COLUMNS = ("alert_count",)
"""Gold columns added after the fact table was first created (each by a migration)."""

FACT_SENSOR_READINGS = Table(
    "fact_sensor_readings",
    GOLD_COLUMNS,
    # Window first: PostgreSQL's primary-key index then also serves the range DELETE.
    primary_key=("window_start", "sensor_id"),
    foreign_keys=(
        ForeignKey("sensor_id", DIM_SENSORS.name, "sensor_id"),
        ForeignKey("window_start", DIM_TIME.name, "window_start"),
    ),
    distkey="sensor_id",
    sortkey=("window_start",),
)

LOAD_HISTORY = Table(
    "load_history",
    (
        Column("id", "VARCHAR(36)", nullable=False),
        Column("window_start", "TIMESTAMP", nullable=False),
        Column("window_end", "TIMESTAMP", nullable=False),
        Column("status", "VARCHAR(16)", nullable=False),
        Column("requested_at", "TIMESTAMP", nullable=False),
        Column("finished_at", "TIMESTAMP"),
        Column("duration_s", "DOUBLE PRECISION"),
        Column("gold_rows", "BIGINT"),
        Column("rows_deleted", "BIGINT"),
        Column("rows_inserted", "BIGINT"),
        Column("gate_verdict", "VARCHAR(16)"),
        Column("override_reason", "VARCHAR(1024)"),
        Column("detail", "VARCHAR(4096)"),
        Column("gold_fingerprints", "VARCHAR(4096)"),
    ),
    primary_key=("id",),
    sortkey=("requested_at",),
)

SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    (
        Column("version", "INTEGER", nullable=False),
        Column("description", "VARCHAR(256)", nullable=False),
        Column("applied_at", "TIMESTAMP", nullable=False),
    ),
    primary_key=("version",),
)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    tables: tuple[Table, ...] = ()
    statements: tuple[str, ...] = ()
    """Run after the tables are created (e.g. ``ALTER TABLE ... ADD COLUMN``)."""
    dialects: tuple[str, ...] | None = None
    """The dialects whose warehouse runs ``statements`` (None: all); elsewhere the version
    is recorded with nothing to do."""


def _column(name: str) -> Column:
    return next(c for c in GOLD_COLUMNS if c.name == name)


FACT_SENSOR_READINGS_V1 = Table(
    FACT_SENSOR_READINGS.name,
    tuple(c for c in GOLD_COLUMNS if c.name not in ADDED_GOLD_COLUMNS),
    primary_key=FACT_SENSOR_READINGS.primary_key,
    foreign_keys=FACT_SENSOR_READINGS.foreign_keys,
    distkey=FACT_SENSOR_READINGS.distkey,
    sortkey=FACT_SENSOR_READINGS.sortkey,
)
"""The fact table as migration 1 created it (later columns come by their migrations)."""

ADDED_HISTORY_COLUMNS = ("gold_fingerprints",)
LOAD_HISTORY_V2 = Table(
    LOAD_HISTORY.name,
    tuple(c for c in LOAD_HISTORY.columns if c.name not in ADDED_HISTORY_COLUMNS),
    primary_key=LOAD_HISTORY.primary_key,
    sortkey=LOAD_HISTORY.sortkey,
)
"""The load history as migration 2 created it."""

FACT_PARTITION_PREFIX = f"{FACT_SENSOR_READINGS.name}_p"
"""PostgreSQL: the fact table's partition for day D is ``fact_sensor_readings_pYYYYMMDD``."""

PARTITION_FACTS_BY_DAY = (
    f"ALTER TABLE {FACT_SENSOR_READINGS.name} RENAME TO {FACT_SENSOR_READINGS.name}_unpartitioned",
    f"ALTER INDEX {FACT_SENSOR_READINGS.name}_pkey "
    f"RENAME TO {FACT_SENSOR_READINGS.name}_unpartitioned_pkey",
    f"CREATE TABLE {FACT_SENSOR_READINGS.name} (LIKE {FACT_SENSOR_READINGS.name}_unpartitioned) "
    "PARTITION BY RANGE (window_start)",
    f"ALTER TABLE {FACT_SENSOR_READINGS.name} "
    f"ADD PRIMARY KEY ({', '.join(FACT_SENSOR_READINGS.primary_key)})",
    f"""DO $$
DECLARE day DATE;
BEGIN
    FOR day IN SELECT DISTINCT CAST(window_start AS DATE)
               FROM {FACT_SENSOR_READINGS.name}_unpartitioned LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF {FACT_SENSOR_READINGS.name} '
                       'FOR VALUES FROM (%L) TO (%L)',
                       '{FACT_PARTITION_PREFIX}' || to_char(day, 'YYYYMMDD'),
                       CAST(day AS TIMESTAMP), CAST(day + 1 AS TIMESTAMP));
    END LOOP;
END $$""",
    f"INSERT INTO {FACT_SENSOR_READINGS.name} SELECT * FROM {FACT_SENSOR_READINGS.name}_unpartitioned",
    f"DROP TABLE {FACT_SENSOR_READINGS.name}_unpartitioned",
)
"""PostgreSQL: the fact table becomes partitioned by day of ``window_start`` (the same
columns, key and rows), so that a load can replace a whole day by swapping in a partition
it has built, instead of deleting and inserting a day's rows against the key's index."""

MIGRATIONS = (
    Migration(
        1,
        "star schema: dim_sensors, dim_time, fact_sensor_readings",
        (DIM_SENSORS, DIM_TIME, FACT_SENSOR_READINGS_V1),
    ),
    Migration(2, "load history", (LOAD_HISTORY_V2,)),
    Migration(
        3,
        "fact_sensor_readings.alert_count (anomaly alerts per sensor per window)",
        statements=(
            f"ALTER TABLE {FACT_SENSOR_READINGS.name} ADD COLUMN alert_count "
            f"{_column('alert_count').type}",
        ),
    ),
    Migration(
        4,
        "load_history.gold_fingerprints (the Gold files a load read, to find windows to reload)",
        statements=(
            f"ALTER TABLE {LOAD_HISTORY.name} ADD COLUMN gold_fingerprints "
            f"{next(c for c in LOAD_HISTORY.columns if c.name == 'gold_fingerprints').type}",
        ),
    ),
    Migration(
        5,
        "fact_sensor_readings partitioned by day (PostgreSQL; whole days are swapped in)",
        statements=PARTITION_FACTS_BY_DAY,
        dialects=("postgresql",),
    ),
)
"""Applied in order, each once; append new versions, never edit an applied one."""
