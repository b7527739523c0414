"""PostgreSQL: the fact table is partitioned by day, and a load swaps in the whole days.

Deleting a window's rows and inserting their new versions in the same transaction is
slow against an enforced key: each new key goes into the primary-key index beside the
deleted version of itself, which no other transaction may lose yet, so the unique check
visits the heap for it, the page's bottom-up deletion pass finds nothing to remove, and
the page splits (a reload cost 1.7x the first load). So on PostgreSQL ``fact_sensor_readings``
is partitioned by day of ``window_start`` (migration 5), and a load, still in one
transaction, treats each day of its window by how much of it the window covers:

- **a whole day**: its rows go into a new table (``fact_sensor_readings_next_pYYYYMMDD``,
  with a CHECK constraint on the day's range) through a routing table, so the stage is read
  once for all whole days; the table gets its primary key afterwards (one sorted index
  build, which is also the duplicate check); then, at the end of the transaction, the
  day's old partition is dropped and the new table renamed and attached in its place (the
  CHECK constraint spares ATTACH its scan);
- **part of a day** (the window starts or ends inside it): the rows are deleted and
  inserted in the day's partition as before; a missing partition is created and attached
  empty first.

Locks: the load holds SHARE ROW EXCLUSIVE on the fact table throughout (one loader at a
time, readers go on); attaching takes SHARE UPDATE EXCLUSIVE (readers go on); dropping an
old partition takes ACCESS EXCLUSIVE on the fact table from the swap to the COMMIT, which
directly follows it (milliseconds), so the swap waits for queries on the fact table that are
running then and new ones wait for the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from warehouse_loader.dialects import Cursor, quote_literal
from warehouse_loader.schema import (
    FACT_PARTITION_PREFIX,
    FACT_SENSOR_READINGS,
    STAGE_GOLD,
)

DAY = timedelta(days=1)
FACT = FACT_SENSOR_READINGS.name
COLUMNS = ", ".join(FACT_SENSOR_READINGS.column_names)
KEY = ", ".join(FACT_SENSOR_READINGS.primary_key)
ROUTING = f"{FACT}_next"
"""Created and dropped inside the load: routes the stage's whole-day rows to their new tables."""

Range = tuple[datetime, datetime]


def partition(day: date) -> str:
    return f"{FACT_PARTITION_PREFIX}{day:%Y%m%d}"


def replacement(day: date) -> str:
    return f"{ROUTING}_p{day:%Y%m%d}"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _literal(value: datetime) -> str:
    return quote_literal(value.isoformat(sep=" "))


def _bounds(day: date) -> str:
    return f"FOR VALUES FROM ({_literal(midnight(day))}) TO ({_literal(midnight(day) + DAY)})"


def _in_ranges(ranges: Sequence[Range]) -> str:
    return " OR ".join("(window_start >= %s AND window_start < %s)" for _ in ranges)


def _params(ranges: Sequence[Range]) -> list[datetime]:
    return [bound for span in ranges for bound in span]


@dataclass(frozen=True)
class DayPlan:
    """How a window (UTC, without zone) falls on the fact table's day partitions."""

    whole: tuple[date, ...]
    """Days the window covers completely: rebuilt and swapped in."""
    partial: tuple[Range, ...]
    """The window's parts of the days it covers only in part: deleted and inserted in place."""

    @classmethod
    def of(cls, start: datetime, end: datetime) -> DayPlan:
        whole: list[date] = []
        partial: list[Range] = []
        day = start.date()
        while midnight(day) < end:
            lo, hi = max(start, midnight(day)), min(end, midnight(day) + DAY)
            if (lo, hi) == (midnight(day), midnight(day) + DAY):
                whole.append(day)
            else:
                partial.append((lo, hi))
            day += DAY
        return cls(tuple(whole), tuple(partial))

    @property
    def whole_range(self) -> Range:
        return midnight(self.whole[0]), midnight(self.whole[-1]) + DAY

    @property
    def partial_days(self) -> tuple[date, ...]:
        return tuple(lo.date() for lo, _ in self.partial)


def _new_day_table(name: str, day: date) -> str:
    low, high = _literal(midnight(day)), _literal(midnight(day) + DAY)
    return (
        f"CREATE TABLE {name} (LIKE {FACT}, CONSTRAINT {name}_day "
        f"CHECK (window_start >= {low} AND window_start < {high}))"
    )


EXISTING_PARTITIONS = (
    "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
    f"WHERE i.inhparent = CAST({quote_literal(FACT)} AS regclass)"
)


class DaySwap:
    """One load's facts on PostgreSQL: :meth:`replace` the window, later :meth:`swap` the days."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.plan = DayPlan.of(start, end)
        self.existing: set[str] = set()

    def replace(self, cursor: Cursor, after_delete: Callable[[], None] | None) -> tuple[int, int]:
        """Everything but the swap: build the whole days' tables (their keys checked),
        replace the partial days' rows in place; return (rows deleted, rows inserted)."""
        plan = self.plan
        cursor.execute(EXISTING_PARTITIONS)
        self.existing = {row[0] for row in cursor.fetchall()}
        deleted = inserted = 0
        if plan.whole:
            inserted += self._build(cursor)
            if any(partition(day) in self.existing for day in plan.whole):
                cursor.execute(
                    f"SELECT COUNT(*) FROM {FACT} WHERE {_in_ranges([plan.whole_range])}",
                    _params([plan.whole_range]),
                )
                deleted += int(cursor.fetchone()[0])
        for day in plan.partial_days:
            if partition(day) not in self.existing:
                self._attach_empty(cursor, day)
        if plan.partial:
            cursor.execute(
                f"DELETE FROM {FACT} WHERE {_in_ranges(plan.partial)}", _params(plan.partial)
            )
            deleted += cursor.rowcount
        if after_delete is not None:
            after_delete()
        if plan.partial:
            cursor.execute(
                f"INSERT INTO {FACT} ({COLUMNS})\nSELECT {COLUMNS} FROM {STAGE_GOLD.name} "
                f"WHERE {_in_ranges(plan.partial)}",
                _params(plan.partial),
            )
            inserted += cursor.rowcount
        return deleted, inserted

    def _build(self, cursor: Cursor) -> int:
        """The whole days' new tables, filled from one scan of the stage, then keyed."""
        cursor.execute(f"CREATE TABLE {ROUTING} (LIKE {FACT}) PARTITION BY RANGE (window_start)")
        for day in self.plan.whole:
            cursor.execute(_new_day_table(replacement(day), day))
            cursor.execute(
                f"ALTER TABLE {ROUTING} ATTACH PARTITION {replacement(day)} {_bounds(day)}"
            )
        cursor.execute(
            f"INSERT INTO {ROUTING} ({COLUMNS})\nSELECT {COLUMNS} FROM {STAGE_GOLD.name} "
            f"WHERE {_in_ranges([self.plan.whole_range])}",
            _params([self.plan.whole_range]),
        )
        inserted = int(cursor.rowcount)
        for day in self.plan.whole:
            cursor.execute(f"ALTER TABLE {ROUTING} DETACH PARTITION {replacement(day)}")
            # A unique index built in one sorted pass: the day's duplicate-key check too.
            cursor.execute(
                f"ALTER TABLE {replacement(day)} ADD CONSTRAINT {replacement(day)}_pkey "
                f"PRIMARY KEY ({KEY})"
            )
        cursor.execute(f"DROP TABLE {ROUTING}")
        return inserted

    def _attach_empty(self, cursor: Cursor, day: date) -> None:
        # CREATE TABLE ... PARTITION OF would lock the fact table against readers;
        # attaching does not (SHARE UPDATE EXCLUSIVE), and an empty table is checked at once.
        cursor.execute(_new_day_table(partition(day), day))
        cursor.execute(f"ALTER TABLE {FACT} ATTACH PARTITION {partition(day)} {_bounds(day)}")
        self.existing.add(partition(day))

    def swap(self, cursor: Cursor) -> None:
        """Put the whole days' new tables in place of their partitions (the last step)."""
        for day in self.plan.whole:
            if partition(day) in self.existing:
                cursor.execute(f"DROP TABLE {partition(day)}")
            cursor.execute(f"ALTER TABLE {replacement(day)} RENAME TO {partition(day)}")
            cursor.execute(f"ALTER INDEX {replacement(day)}_pkey RENAME TO {partition(day)}_pkey")
            cursor.execute(f"ALTER TABLE {FACT} ATTACH PARTITION {partition(day)} {_bounds(day)}")
