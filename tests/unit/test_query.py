"""``iotpipe query``: DuckDB over a lake of real Parquet in the layout the jobs write (Bronze
and Silver as the gate's tests lay them out, Gold by the loader's Spark-style writer, a
streaming sink's log), through the real entry point; JSON and CSV parsed back."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from warehouse_loader.sample import sample_gold, write_gold

from iotpipe.gate_client import Layer
from iotpipe.lake import DLQ_PARTITIONS, Lake
from iotpipe.windows import Window
from tests.cli import run_module
from tests.integration.quality_gate.lakedata import readings, write

BRONZE_WINDOW = Window.parse("2026-11-26T22:00:00Z--2026-11-27T01:00:00Z")
"""Three hours across midnight: 960 readings an hour."""
GOLD_START = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)


def query(*args: str, lake: Lake | None = None) -> subprocess.CompletedProcess[str]:
    env = {"LAKE_ROOT": lake.root} if lake is not None else {}
    return run_module(["iotpipe", "query", *args], drop=("LAKE_",), env=env, timeout=120)


def rows(sql: str, lake: Lake) -> list[dict[str, object]]:
    result = query(sql, "--output", "json", lake=lake)
    assert result.returncode == 0, result.stderr
    parsed: list[dict[str, object]] = json.loads(result.stdout)
    return parsed


@pytest.fixture(scope="module")
def bronze() -> pd.DataFrame:
    frame = readings(BRONZE_WINDOW)
    frame.loc[frame["kafka_offset"] % 7 == 0, "is_anomaly"] = True
    return frame


@pytest.fixture(scope="module")
def gold() -> pa.Table:
    return sample_gold(GOLD_START, windows=72, sensors=30)  # 20:00 to 02:00, two days


@pytest.fixture(scope="module")
def letters() -> pa.Table:
    kinds = ["malformed_json"] * 5 + ["schema_mismatch"] * 3 + ["out_of_contract"] * 2
    days = [datetime(2026, 11, 26 + i % 2, 12, tzinfo=UTC) for i in range(len(kinds))]
    return pa.table(
        {
            "key": [f"sensor-events-0-{i}" for i in range(len(kinds))],
            "value": [b"{not json" for _ in kinds],
            "error_type": kinds,
            "dead_lettered_at": days,
            "dead_lettered_date": [d.date() for d in days],
        }
    )


@pytest.fixture(scope="module")
def lake(
    tmp_path_factory: pytest.TempPathFactory,
    bronze: pd.DataFrame,
    gold: pa.Table,
    letters: pa.Table,
) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("query") / "lake"))
    # the first hour written by an older writer, before `location` existed
    first_hour = bronze["event_hour"] == 22
    write(lake, Layer.BRONZE, bronze[first_hour].drop(columns=["location"]))
    write(lake, Layer.BRONZE, bronze[~first_hour])
    write(lake, Layer.SILVER, bronze)
    write_gold(lake.gold_windows, gold)
    pq.write_to_dataset(letters, lake.dlq, partition_cols=list(DLQ_PARTITIONS))
    return lake


def test_bronze_per_hour_with_partition_columns(lake: Lake, bronze: pd.DataFrame) -> None:
    found = rows(
        "SELECT event_date, event_hour, count(*) AS n FROM bronze GROUP BY ALL ORDER BY ALL", lake
    )
    expected = bronze.groupby(["event_date", "event_hour"]).size()
    assert found == [
        {"event_date": day.isoformat(), "event_hour": hour, "n": n}
        for (day, hour), n in expected.items()
    ]
    assert sum(row["n"] for row in found) == len(bronze) == 2880  # type: ignore[misc]


def test_files_without_a_newer_column_read_it_as_null(lake: Lake, bronze: pd.DataFrame) -> None:
    [row] = rows("SELECT count(*) FILTER (location IS NULL) AS missing FROM bronze", lake)
    assert row["missing"] == int((bronze["event_hour"] == 22).sum()) == 960


def test_silver_anomalies_and_times_in_utc(lake: Lake, bronze: pd.DataFrame) -> None:
    [row] = rows(
        "SELECT count(*) FILTER (is_anomaly) AS anomalies, min(timestamp) AS first FROM silver",
        lake,
    )
    assert row["anomalies"] == int(bronze["is_anomaly"].sum())
    assert row["first"] == BRONZE_WINDOW.start.isoformat()


def test_gold_as_csv_per_window_date(lake: Lake, gold: pa.Table) -> None:
    result = query(
        "SELECT window_date, count(*) AS windows, sum(reading_count) AS readings "
        "FROM gold GROUP BY 1 ORDER BY 1",
        "--lake",
        lake.root,
        "--output",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = []
    for day in sorted(pc.unique(gold["window_date"]).to_pylist()):
        part = gold.filter(pc.equal(gold["window_date"], day))
        expected.append(
            {
                "window_date": day.isoformat(),
                "windows": str(part.num_rows),
                "readings": str(pc.sum(part["reading_count"]).as_py()),
            }
        )
    assert parsed == expected
    assert [row["windows"] for row in parsed] == ["1440", "720"]  # 48 and 24 windows x 30


def test_a_join_across_layers_and_the_dlq(lake: Lake, letters: pa.Table) -> None:
    found = rows("SELECT error_type, count(*) AS n FROM dlq GROUP BY 1 ORDER BY 2 DESC", lake)
    assert {row["error_type"]: row["n"] for row in found} == Counter(
        letters["error_type"].to_pylist()
    )
    [joined] = rows(
        "SELECT count(DISTINCT s.sensor_id) AS sensors FROM silver s "
        "JOIN bronze b USING (event_id)",
        lake,
    )
    assert joined["sensors"] == 8


def test_uncommitted_files_of_a_streaming_sink_are_left_out(
    tmp_path: Path, bronze: pd.DataFrame
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    write(lake, Layer.BRONZE, bronze)
    root = Path(lake.bronze)
    files = sorted(p for p in root.rglob("*.parquet"))
    log = root / "_spark_metadata"
    log.mkdir()
    entries = [json.dumps({"path": f"file://{p}", "action": "add"}) for p in files]
    (log / "0").write_text("v1\n" + "\n".join(entries) + "\n")
    shutil.copy(files[0], files[0].with_name("part-00099-a-dead-attempt.snappy.parquet"))

    [row] = rows("SELECT count(*) AS n FROM bronze", lake)
    assert row["n"] == len(bronze)


def test_the_table_is_for_people(lake: Lake) -> None:
    result = query("SELECT sensor_id FROM gold ORDER BY 1", "--max-rows", "3", lake=lake)
    assert result.returncode == 0, result.stderr
    assert "sensor-00000" in result.stdout
    assert "sensor-00001" not in result.stdout.split("sensor-00000", 1)[0]
    assert "2,157 more rows" in result.stderr


def test_errors_exit_1_without_a_traceback(lake: Lake, tmp_path: Path) -> None:
    bad = query("SELECT nope FROM silver", lake=lake)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "nope" in bad.stderr

    empty = query("SELECT count(*) FROM gold_daily", "--lake", str(tmp_path / "none"))
    assert empty.returncode == 1
    assert f"the lake at {tmp_path / 'none'} has no gold_daily data" in " ".join(
        empty.stderr.split()
    )


def test_an_unreadable_file_is_an_error_naming_the_table(tmp_path: Path, gold: pa.Table) -> None:
    lake = Lake(str(tmp_path / "lake"))
    write_gold(lake.gold_windows, gold)
    (Path(lake.gold_windows) / "window_date=2026-11-26" / "part-99.parquet").write_bytes(b"PAR1")
    broken = query("SELECT count(*) FROM gold", lake=lake)
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
    assert f"cannot read gold at {lake.gold_windows}" in " ".join(broken.stderr.split())


def test_help_lists_the_views_and_examples() -> None:
    result = run_module(["iotpipe", "query", "--help"], env={"COLUMNS": "200"}, timeout=60)
    assert result.returncode == 0
    for view in ("bronze", "silver", "gold", "gold_location_hourly", "gold_daily", "dlq"):
        assert f" {view}: " in result.stdout
    assert 'iotpipe query "SELECT count(*) FROM silver"' in result.stdout
