"""Reading Gold windows with pyarrow: the schema contract, partitions, the window's bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as t
from spark_jobs.schemas import GOLD_WINDOWS
from warehouse_loader.gold import (
    FILE_SCHEMA,
    GOLD_SCHEMA,
    GoldError,
    partition_path,
    read_gold,
    window_days,
)
from warehouse_loader.sample import replace_gold, sample_gold, write_gold

from iotpipe.lake import Lake
from iotpipe.windows import Window

START = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
_ARROW_FOR_SPARK: dict[t.DataType, pa.DataType] = {
    t.StringType(): pa.string(),
    t.TimestampType(): pa.timestamp("us", tz="UTC"),
    t.LongType(): pa.int64(),
    t.DoubleType(): pa.float64(),
    t.DateType(): pa.date32(),
}


def test_arrow_schema_is_the_spark_jobs_gold_schema() -> None:
    spark_side = [(f.name, _ARROW_FOR_SPARK[f.dataType], f.nullable) for f in GOLD_WINDOWS.fields]
    loader_side = [(f.name, f.type, f.nullable) for f in GOLD_SCHEMA]
    assert loader_side == spark_side
    assert FILE_SCHEMA.names == [f.name for f in GOLD_WINDOWS.fields if f.name != "window_date"]


@pytest.mark.parametrize(
    ("window", "days"),
    [
        ("2026-11-26", [date(2026, 11, 26)]),
        ("2026-11-26T23:55:00Z--2026-11-27T00:00:00Z", [date(2026, 11, 26)]),
        ("2026-11-26T23:55:00Z--2026-11-27T00:05:00Z", [date(2026, 11, 26), date(2026, 11, 27)]),
        ("2026-11-26T00:00:00Z--2026-11-29T00:00:00Z", [date(2026, 11, d) for d in (26, 27, 28)]),
    ],
)
def test_window_days_are_the_partitions_a_window_touches(window: str, days: list[date]) -> None:
    assert window_days(Window.parse(window)) == days


@pytest.fixture
def lake(tmp_path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    write_gold(lake.gold_windows, sample_gold(START, windows=48, sensors=5))  # 22:00 to 02:00
    return lake


def test_reads_only_the_windows_rows_across_midnight(lake: Lake) -> None:
    window = Window(START + timedelta(hours=1), START + timedelta(hours=3))
    gold = read_gold(lake, window)
    assert gold.rows == 24 * 5
    assert gold.days == (date(2026, 11, 26), date(2026, 11, 27))
    assert gold.table.schema == FILE_SCHEMA
    starts = gold.table["window_start"]
    assert pc.min(starts).as_py() == window.start
    assert pc.max(starts).as_py() == window.end - timedelta(minutes=5)


def test_a_window_without_gold_is_empty_not_an_error(lake: Lake) -> None:
    gold = read_gold(lake, Window.parse("2026-12-01"))
    assert gold.rows == 0
    assert gold.days == ()
    assert gold.table.schema == FILE_SCHEMA
    assert read_gold(Lake("/nonexistent/lake"), Window.parse("2026-11-26")).rows == 0


def test_spark_style_int96_and_zone_less_timestamps_are_utc_instants(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    table = sample_gold(START, windows=2, sensors=2).drop_columns(["window_date"])
    naive = pa.schema(
        [
            pa.field(f.name, pa.timestamp("us"))
            if f.name.startswith(("window_", "processing"))
            else f
            for f in table.schema
        ]
    )
    folder = partition_path(lake.gold_windows, START.date())
    (tmp_path / folder).mkdir(parents=True)
    pq.write_table(
        table.cast(naive), f"{folder}/part-0.parquet", use_deprecated_int96_timestamps=True
    )

    gold = read_gold(lake, Window.parse("2026-11-26"))

    assert gold.table.equals(table.cast(FILE_SCHEMA))
    assert gold.table["window_start"].to_pylist()[0] == START


def test_a_missing_nullable_column_reads_as_nulls_and_a_missing_key_is_an_error(
    tmp_path,
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    table = sample_gold(START, windows=1, sensors=3)
    replace_gold(lake.gold_windows, table.drop_columns(["p99_value"]))
    gold = read_gold(lake, Window.parse("2026-11-26"))
    assert gold.table["p99_value"].null_count == 3

    replace_gold(lake.gold_windows, table.drop_columns(["sensor_id"]))
    with pytest.raises(GoldError, match="no column 'sensor_id'"):
        read_gold(lake, Window.parse("2026-11-26"))


def test_replace_gold_overwrites_the_partitions_it_covers(lake: Lake) -> None:
    day = Window.parse("2026-11-27")
    before = read_gold(lake, day).rows
    replace_gold(lake.gold_windows, sample_gold(day.start, windows=1, sensors=2, seed=8))
    assert before == 24 * 5
    assert read_gold(lake, day).rows == 2
    assert read_gold(lake, Window.parse("2026-11-26")).rows == 24 * 5


def test_a_window_falls_on_whole_days_and_parts_of_days() -> None:
    from warehouse_loader.partitions import DayPlan

    plan = DayPlan.of(datetime(2026, 11, 25, 18), datetime(2026, 11, 28, 6))
    assert plan.whole == (date(2026, 11, 26), date(2026, 11, 27))
    assert plan.whole_range == (datetime(2026, 11, 26), datetime(2026, 11, 28))
    assert plan.partial == (
        (datetime(2026, 11, 25, 18), datetime(2026, 11, 26)),
        (datetime(2026, 11, 28), datetime(2026, 11, 28, 6)),
    )
    day = DayPlan.of(datetime(2026, 11, 26), datetime(2026, 11, 27))
    assert (day.whole, day.partial) == ((date(2026, 11, 26),), ())
    hours = DayPlan.of(datetime(2026, 11, 26, 1), datetime(2026, 11, 26, 3))
    assert (hours.whole, hours.partial) == (
        (),
        ((datetime(2026, 11, 26, 1), datetime(2026, 11, 26, 3)),),
    )
