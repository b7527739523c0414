"""PostgreSQL's fact table by day: whole days of a window swapped in, partial days replaced in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from warehouse_loader.dialects import dialect_for
from warehouse_loader.gold import read_gold
from warehouse_loader.sample import replace_gold, sample_gold
from warehouse_loader.settings import LoaderSettings
from warehouse_loader.warehouse import LoadError, Warehouse

from iotpipe.lake import Lake
from iotpipe.windows import Window

from .conftest import facts, gold_rows

pytestmark = pytest.mark.integration

GOLD = datetime(2026, 11, 25, 12, tzinfo=UTC)
"""Gold from noon on the 25th to midnight on the 28th: 720 windows."""
SPAN = Window(datetime(2026, 11, 25, 18, tzinfo=UTC), datetime(2026, 11, 27, 6, tzinfo=UTC))
"""Part of the 25th, the whole 26th, part of the 27th."""
SENSORS = 10


def partitions(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST('fact_sensor_readings' AS regclass) ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def warehouse(settings: LoaderSettings) -> Warehouse:
    warehouse = Warehouse(dialect_for(settings))
    warehouse.migrate()
    return warehouse


def test_whole_days_are_swapped_and_partial_days_replaced_exactly(
    warehouse: Warehouse, settings: LoaderSettings, lake: Lake
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    first = sample_gold(GOLD, windows=720, sensors=SENSORS)
    replace_gold(lake.gold_windows, first)
    whole = Window(GOLD, GOLD + timedelta(hours=60))
    assert warehouse.load(read_gold(lake, whole)).rows_inserted == 7200
    assert facts(dsn) == sorted(gold_rows(first, whole), key=lambda r: (r[0], r[3]))
    assert partitions(dsn) == [f"fact_sensor_readings_p202611{d}" for d in (25, 26, 27)]

    # Recomputed Gold (fewer sensors, other values) for the span only.
    second = sample_gold(GOLD, windows=720, sensors=SENSORS - 3, seed=7, version="rerun")
    replace_gold(lake.gold_windows, second)
    seen: list[int] = []

    def look() -> None:  # inside the load: others still see every previous row
        with psycopg.connect(dsn) as other:
            row = other.execute("SELECT COUNT(*) FROM fact_sensor_readings").fetchone()
            seen.append(row[0] if row else -1)

    counts = warehouse.load(read_gold(lake, SPAN), after_delete=look)

    assert seen == [7200]
    in_span = 12 * 36  # windows in the span
    assert (counts.rows_deleted, counts.rows_inserted) == (in_span * SENSORS, in_span * 7)
    expected = (
        gold_rows(first, Window(GOLD, SPAN.start))
        + gold_rows(second, SPAN)
        + gold_rows(first, Window(SPAN.end, whole.end))
    )
    assert facts(dsn) == sorted(expected, key=lambda r: (r[0], r[3]))
    assert partitions(dsn) == [f"fact_sensor_readings_p202611{d}" for d in (25, 26, 27)]
    # And once more: the swapped-in day is an ordinary partition with its key.
    assert warehouse.load(read_gold(lake, SPAN)).rows_deleted == in_span * 7
    assert facts(dsn) == sorted(expected, key=lambda r: (r[0], r[3]))


def test_a_key_twice_in_a_whole_day_rolls_back_and_names_it(
    warehouse: Warehouse, settings: LoaderSettings, lake: Lake
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    gold = sample_gold(GOLD, windows=720, sensors=SENSORS)
    replace_gold(lake.gold_windows, gold)
    warehouse.load(read_gold(lake, SPAN))
    previous, before = facts(dsn), partitions(dsn)
    noon = pa.scalar(datetime(2026, 11, 26, 12, tzinfo=UTC), gold.schema.field("window_start").type)
    twice = gold.filter(
        pc.and_(pc.equal(gold["sensor_id"], "sensor-00003"), pc.equal(gold["window_start"], noon))
    )
    assert twice.num_rows == 1
    replace_gold(lake.gold_windows, pa.concat_tables([gold, twice]))

    with pytest.raises(LoadError, match=r"key more than once.*sensor-00003"):
        warehouse.load(read_gold(lake, SPAN))

    assert facts(dsn) == previous
    assert partitions(dsn) == before
