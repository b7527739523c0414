"""Schema migrations and the load itself: delete-then-insert of one window, one transaction.

A load, in one transaction::

    LOCK fact_sensor_readings               one writer at a time; readers go on
    CREATE TEMPORARY TABLE stage_gold       filled by the dialect (COPY)
    DELETE FROM stage_gold outside window   Redshift COPYs whole day partitions (PostgreSQL
                                            COPYs only the window's rows and counts them)
    check: staged rows = Gold rows read, no duplicate (sensor_id, window_start)
                                            (PostgreSQL: the fact key is enforced, so
                                            the INSERT below is the duplicate check)
    DELETE FROM fact_sensor_readings WHERE window_start in window
    INSERT INTO fact_sensor_readings SELECT * FROM stage_gold
    check: inserted rows = Gold rows
    MERGE dim_sensors, INSERT new dim_time rows
    COMMIT

Any error rolls the whole transaction back, so a failed or killed load leaves the
previous contents of the window as they were; readers never see the window half-loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from iotpipe.contract import SENSOR_TYPES
from warehouse_loader.dialects import Cursor, Dialect
from warehouse_loader.gold import GoldSlice
from warehouse_loader.partitions import DaySwap
from warehouse_loader.schema import (
    DIM_SENSORS,
    DIM_TIME,
    FACT_SENSOR_READINGS,
    MIGRATIONS,
    SCHEMA_MIGRATIONS,
    STAGE_GOLD,
    STAGE_SENSORS,
)

log = logging.getLogger(__name__)


class LoadError(RuntimeError):
    """A load was rolled back because its result would not have matched Gold."""


@dataclass(frozen=True)
class LoadCounts:
    rows_deleted: int
    rows_inserted: int


def utc_naive(value: datetime) -> datetime:
    """Timestamps go to the warehouse as UTC wall-clock time (columns have no zone)."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _unit_case(sensor_type: str) -> str:
    whens = " ".join(
        f"WHEN '{kind.value}' THEN '{spec.unit}'" for kind, spec in SENSOR_TYPES.items()
    )
    return f"CASE {sensor_type} {whens} ELSE NULL END"


FACT_COLUMNS = ", ".join(FACT_SENSOR_READINGS.column_names)

TRIM_STAGE = f"DELETE FROM {STAGE_GOLD.name} WHERE window_start < %s OR window_start >= %s"
COUNT_STAGE = f"SELECT COUNT(*) FROM {STAGE_GOLD.name}"
COUNT_DUPLICATE_KEYS = (
    f"SELECT COUNT(*) FROM (SELECT sensor_id, window_start FROM {STAGE_GOLD.name} "
    "GROUP BY sensor_id, window_start HAVING COUNT(*) > 1) AS duplicated"
)
SELECT_STAGE_SENSORS = f"""SELECT s.sensor_id, s.sensor_type, {_unit_case("s.sensor_type")} AS unit, s.location,
    span.first_window_start, span.last_window_start
FROM (
    SELECT sensor_id, MIN(window_start) AS first_window_start,
        MAX(window_start) AS last_window_start
    FROM {STAGE_GOLD.name}
    GROUP BY sensor_id
) AS span
JOIN {STAGE_GOLD.name} AS s
    ON s.sensor_id = span.sensor_id AND s.window_start = span.last_window_start"""
"""One row per sensor: its span in the window and the attributes of its newest window.

An aggregate (one group per sensor) joined back to the stage on the newest key, which is
unique once the stage has passed the duplicate check: no sort of the window's rows.
"""


def _newest(column: str) -> str:
    """Take the staged attribute when the staged window is the sensor's newest."""
    return (
        f"{column} = CASE WHEN s.last_window_start >= {DIM_SENSORS.name}.last_window_start "
        f"THEN s.{column} ELSE {DIM_SENSORS.name}.{column} END"
    )


MERGE_DIM_SENSORS = f"""MERGE INTO {DIM_SENSORS.name}
USING {STAGE_SENSORS} AS s
ON {DIM_SENSORS.name}.sensor_id = s.sensor_id
WHEN MATCHED THEN UPDATE SET
    {_newest("sensor_type")},
    {_newest("unit")},
    {_newest("location")},
    first_window_start = LEAST({DIM_SENSORS.name}.first_window_start, s.first_window_start),
    last_window_start = GREATEST({DIM_SENSORS.name}.last_window_start, s.last_window_start)
WHEN NOT MATCHED THEN INSERT ({", ".join(DIM_SENSORS.column_names)})
VALUES ({", ".join(f"s.{c}" for c in DIM_SENSORS.column_names)})"""

INSERT_DIM_TIME = f"""INSERT INTO {DIM_TIME.name} ({", ".join(DIM_TIME.column_names)})
SELECT s.window_start, s.window_end, CAST(s.window_start AS DATE),
    EXTRACT(YEAR FROM s.window_start), EXTRACT(QUARTER FROM s.window_start),
    EXTRACT(MONTH FROM s.window_start), EXTRACT(DAY FROM s.window_start),
    EXTRACT(DOW FROM s.window_start), EXTRACT(HOUR FROM s.window_start),
    EXTRACT(MINUTE FROM s.window_start),
    CASE WHEN EXTRACT(DOW FROM s.window_start) IN (0, 6) THEN TRUE ELSE FALSE END
FROM (SELECT DISTINCT window_start, window_end FROM {STAGE_GOLD.name}) AS s
LEFT JOIN {DIM_TIME.name} AS d ON d.window_start = s.window_start
WHERE d.window_start IS NULL"""
"""The window starts not in ``dim_time`` yet: distinct first (one per 5-minute window),
then the calendar attributes for those few rows."""

DELETE_FACTS = (
    f"DELETE FROM {FACT_SENSOR_READINGS.name} WHERE window_start >= %s AND window_start < %s"
)
INSERT_FACTS = (
    f"INSERT INTO {FACT_SENSOR_READINGS.name} ({FACT_COLUMNS})\n"
    f"SELECT {FACT_COLUMNS} FROM {STAGE_GOLD.name}"
)


class Warehouse:
    """The warehouse through one dialect: a fresh connection per unit of work."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor in a transaction that commits on success and rolls back on any error."""
        connection = self.dialect.connect()
        try:
            cursor = connection.cursor()
            yield cursor
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    def ping(self) -> None:
        with self.transaction() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, in one transaction; return their versions.

        Safe to run from several replicas at once: the migrations table is locked first.
        """
        with self.transaction() as cursor:
            for statement in self.dialect.create_table(SCHEMA_MIGRATIONS):
                cursor.execute(statement)
        with self.transaction() as cursor:
            cursor.execute(self.dialect.lock(SCHEMA_MIGRATIONS.name))
            cursor.execute(f"SELECT version FROM {SCHEMA_MIGRATIONS.name}")
            applied = {int(row[0]) for row in cursor.fetchall()}
            pending = [m for m in MIGRATIONS if m.version not in applied]
            for migration in pending:
                for table in migration.tables:
                    for statement in self.dialect.create_table(table):
                        cursor.execute(statement)
                if migration.dialects is None or self.dialect.name in migration.dialects:
                    for statement in migration.statements:
                        cursor.execute(statement)
                cursor.execute(
                    f"INSERT INTO {SCHEMA_MIGRATIONS.name} (version, description, applied_at) "
                    "VALUES (%s, %s, %s)",
                    (migration.version, migration.description, utc_naive(datetime.now(UTC))),
                )
        versions = [m.version for m in pending]
        if versions:
            log.info("applied schema migrations %s", versions)
        return versions

    def load(
        self, gold: GoldSlice, *, after_delete: Callable[[], None] | None = None
    ) -> LoadCounts:
        """Replace the window's facts with ``gold``, in one transaction (see the module doc)."""
        window = gold.window
        bounds = (utc_naive(window.start), utc_naive(window.end))
        with self.transaction() as cursor:
            cursor.execute(self.dialect.lock(FACT_SENSOR_READINGS.name))
            cursor.execute(self.dialect.create_temporary(STAGE_GOLD))
            staged = self.dialect.fill_stage(cursor, gold)
            if staged is None:
                cursor.execute(TRIM_STAGE, bounds)
                cursor.execute(COUNT_STAGE)
                staged = int(cursor.fetchone()[0])
            self._check_stage(cursor, gold, staged)
            days = DaySwap(*bounds) if self.dialect.partitions_by_day else None
            try:
                if days is not None:
                    deleted, inserted = days.replace(cursor, after_delete)
                else:
                    cursor.execute(DELETE_FACTS, bounds)
                    deleted = cursor.rowcount
                    if after_delete is not None:
                        after_delete()
                    cursor.execute(INSERT_FACTS)
                    inserted = cursor.rowcount
            except self.dialect.duplicate_key_errors as error:
                raise LoadError(
                    f"Gold at {gold.location} has a (sensor_id, window_start) key more than "
                    f"once in {gold.window} ({' '.join(str(error).split())}); "
                    "fix Gold, then load again"
                ) from error
            if inserted != gold.rows:
                raise LoadError(f"inserted {inserted} rows but Gold has {gold.rows}; rolled back")
            cursor.execute(self.dialect.create_temporary_as(STAGE_SENSORS, SELECT_STAGE_SENSORS))
            cursor.execute(MERGE_DIM_SENSORS)
            cursor.execute(INSERT_DIM_TIME)
            if days is not None:
                days.swap(cursor)  # last: from here to the commit, readers wait
        return LoadCounts(rows_deleted=deleted, rows_inserted=inserted)

    def _check_stage(self, cursor: Cursor, gold: GoldSlice, staged: int) -> None:
        if staged != gold.rows:
            raise LoadError(
                f"staged {staged} rows for {gold.window} but {gold.location} has "
                f"{gold.rows}; Gold changed during the load or the COPY read other files"
            )
        if self.dialect.duplicate_key_errors:
            return  # the fact table's key is enforced: the INSERT fails on a duplicate
        cursor.execute(COUNT_DUPLICATE_KEYS)
        duplicated = int(cursor.fetchone()[0])
        if duplicated:
            raise LoadError(
                f"Gold at {gold.location} has {duplicated} (sensor_id, window_start) keys "
                f"more than once in {gold.window}; fix Gold, then load again"
            )
