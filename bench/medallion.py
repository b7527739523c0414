"""Bronze -> Silver -> Gold over 10 million readings: the Spark jobs (local[2]) against
DuckDB running the same logic as SQL on the same Parquet, in the same run.

The Bronze input (250 sensors x 40,000 s at 1 Hz, 1 % re-sent duplicates, 0.1 % null
values, rare spikes and out-of-range readings) is generated once with DuckDB and
cached under /tmp, keyed by :data:`DATA_VERSION`. Each side then reads Bronze,
writes Silver (clean, dedup, flags, z-score over the previous 100 readings, lineage)
and writes the three Gold tables; both sides' row counts are recorded to show that
they did the same work. DuckDB gets the same 2 threads and 2 GB as Spark's driver.

ratio = Spark time ÷ DuckDB time; target: Spark ≤ 3x DuckDB.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import Result

DATA_VERSION = "v1"
SENSORS = 250
SECONDS = 40_000
"""SENSORS x SECONDS = 10,000,000 readings before duplicates are added."""
DUPLICATE_EVERY = 100
NULL_EVERY = 1000
START = datetime(2026, 11, 20, tzinfo=UTC)
CACHE = Path(os.environ.get("MEDALLION_BENCH_DIR", f"/tmp/iotpipe-bench-medallion-{DATA_VERSION}"))
TARGET_RATIO = 3.0


def _duckdb(threads: int = 2) -> Any:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}; SET memory_limit = '2GB'; SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false; SET enable_progress_bar = false")
    return con


def _types_sql() -> str:
    """The contract's sensor types (with unit and bounds) as a DuckDB VALUES list."""
    from iotpipe.contract import SENSOR_TYPES

    rows = ", ".join(
        f"({i}, '{kind.value}', '{spec.unit}', {spec.min_value}, {spec.max_value})"
        for i, (kind, spec) in enumerate(SENSOR_TYPES.items())
    )
    return f"(VALUES {rows}) AS types(type_no, sensor_type, unit, min_value, max_value)"


def generate_bronze(root: Path) -> Path:
    """10M readings as Bronze Parquet (partitioned like the streaming job), once per version."""
    bronze = root / "bronze"
    done = root / "bronze.done"
    if done.exists():
        return bronze
    shutil.rmtree(bronze, ignore_errors=True)
    bronze.mkdir(parents=True)
    start = START.strftime("%Y-%m-%d %H:%M:%S+00")
    readings = f"""
        SELECT s AS sensor_no, i AS second_no,
               (hash(s * 1000003 + i) % 1000000) / 1000000.0 AS u
        FROM range({SENSORS}) r(s), range({SECONDS}) t(i)
    """
    body = f"""
        SELECT
            uuid() :: VARCHAR AS event_id,
            printf('sensor-%04d', sensor_no) AS sensor_id,
            types.sensor_type,
            TIMESTAMPTZ '{start}' + to_seconds(second_no) AS "timestamp",
            CASE
                WHEN second_no % {NULL_EVERY} = 7 THEN NULL
                WHEN u < 0.0002 THEN types.max_value * 1.5
                WHEN u < 0.0010 THEN (types.min_value + types.max_value) / 2 + 40 * (u * 1000 + 1)
                ELSE (types.min_value + types.max_value) / 2
                     + 5 * sin(second_no / 600.0) + 2 * (u - 0.5)
            END :: DOUBLE AS value,
            types.unit,
            printf('site-%d', sensor_no % 10) AS location,
            1 :: BIGINT AS schema_version,
            'sensor-events' AS kafka_topic,
            (sensor_no % 3) :: INTEGER AS kafka_partition,
            (second_no * {SENSORS} + sensor_no) :: BIGINT AS kafka_offset,
            TIMESTAMPTZ '{start}' + to_seconds(second_no) AS kafka_timestamp,
            TIMESTAMPTZ '{start}' + to_seconds(second_no + 1) AS ingest_time
        FROM ({readings}) JOIN {_types_sql()} ON types.type_no = sensor_no % 4
    """
    resent = f"""
        SELECT * REPLACE (
            uuid() :: VARCHAR AS event_id,
            kafka_offset + 1000000000 AS kafka_offset,
            ingest_time + INTERVAL 30 SECOND AS ingest_time)
        FROM base WHERE kafka_offset % {DUPLICATE_EVERY} = 3
    """
    con = _duckdb()
    con.execute(f"CREATE TEMP TABLE base AS {body}")
    con.execute(
        f"""COPY (
            SELECT *, "timestamp" :: DATE AS event_date, hour("timestamp") :: INTEGER AS event_hour
            FROM (SELECT * FROM base UNION ALL {resent})
        ) TO '{bronze}' (FORMAT parquet, PARTITION_BY (event_date, event_hour), COMPRESSION snappy)"""
    )
    con.close()
    done.touch()
    return bronze


def duckdb_medallion(bronze: Path, out: Path, window_sql: str) -> dict[str, int]:
    """The same Bronze -> Silver -> Gold logic as the Spark jobs, in DuckDB SQL."""
    from spark_jobs.medallion import GOLD_WINDOW_SECONDS, MedallionSettings

    settings = MedallionSettings()
    con = _duckdb()
    silver = out / "silver"
    con.execute(
        f"""COPY (
        WITH src AS (
            SELECT * FROM read_parquet('{bronze}/**/*.parquet', hive_partitioning = true,
                                       filename = 'source_file')
            WHERE {window_sql}
        ), valid AS (
            SELECT * FROM src WHERE sensor_id IS NOT NULL AND sensor_type IS NOT NULL
              AND "timestamp" IS NOT NULL AND value IS NOT NULL AND NOT isnan(value)
        ), dedup AS (
            SELECT * FROM valid QUALIFY row_number() OVER (
                PARTITION BY sensor_id, "timestamp"
                ORDER BY ingest_time, kafka_partition, kafka_offset, event_id, source_file) = 1
        ), scored AS (
            SELECT dedup.*, avg(value) OVER w AS m, stddev_samp(value) OVER w AS sd,
                   count(value) OVER w AS n, types.min_value AS lo, types.max_value AS hi
            FROM dedup LEFT JOIN {_types_sql()} USING (sensor_type)
            WINDOW w AS (PARTITION BY sensor_id ORDER BY "timestamp"
                         ROWS BETWEEN {settings.zscore_window} PRECEDING AND 1 PRECEDING)
        ), flagged AS (
            SELECT * EXCLUDE (m, sd, n, lo, hi),
                coalesce(NOT (value BETWEEN lo AND hi), true) AS is_out_of_range,
                (n >= {settings.zscore_min_history}
                 AND abs(value - m) > {settings.zscore_threshold} * sd) AS is_zscore_anomaly,
                CASE WHEN n >= {settings.zscore_min_history} AND sd > 0
                     THEN (value - m) / sd END AS zscore
            FROM scored
        )
        SELECT * EXCLUDE (is_zscore_anomaly), coalesce(is_zscore_anomaly, false) AS is_zscore_anomaly,
               is_out_of_range OR coalesce(is_zscore_anomaly, false) AS is_anomaly,
               now() AS processing_timestamp, '{settings.pipeline_version}' AS pipeline_version
        FROM flagged
    ) TO '{silver}' (FORMAT parquet, PARTITION_BY (event_date, event_hour), COMPRESSION snappy)"""
    )
    rate = settings.default_rate_hz
    con.execute(
        f"""CREATE TEMP TABLE windows AS
        SELECT sensor_id, max(sensor_type) AS sensor_type, arg_max(location, "timestamp") AS location,
               time_bucket(INTERVAL {GOLD_WINDOW_SECONDS} SECOND, "timestamp") AS window_start,
               count(value) AS reading_count, avg(value) AS avg_value, min(value) AS min_value,
               max(value) AS max_value, stddev_samp(value) AS stddev_value,
               approx_quantile(value, [0.5, 0.95, 0.99]) AS q, count_if(is_anomaly) AS anomaly_count,
               sum(value) AS value_sum
        FROM read_parquet('{silver}/**/*.parquet', hive_partitioning = true)
        GROUP BY sensor_id, window_start"""
    )
    con.execute(
        f"""COPY (
            SELECT * EXCLUDE (q, value_sum), window_start + INTERVAL {GOLD_WINDOW_SECONDS} SECOND AS window_end,
                   q[1] AS p50_value, q[2] AS p95_value, q[3] AS p99_value,
                   round({rate * GOLD_WINDOW_SECONDS}) :: BIGINT AS expected_count,
                   reading_count / {rate * GOLD_WINDOW_SECONDS} * 100 AS health_pct,
                   now() AS processing_timestamp, window_start :: DATE AS window_date
            FROM windows
        ) TO '{out / "gold_windows"}' (FORMAT parquet, PARTITION_BY (window_date))"""
    )
    for name, keys, unit, seconds in (
        ("gold_location_hourly", "location, sensor_type", "hour", 3600),
        ("gold_daily", "sensor_type", "day", 86400),
    ):
        con.execute(
            f"""COPY (
            WITH per_sensor AS (
                SELECT {keys}, date_trunc('{unit}', window_start) AS period_start, sensor_id,
                       sum(reading_count) AS reading_count, sum(value_sum) AS value_sum,
                       min(min_value) AS min_value, max(max_value) AS max_value,
                       sum(anomaly_count) AS anomaly_count, {rate * seconds} AS expected
                FROM windows GROUP BY ALL
            )
            SELECT {keys}, period_start, count(*) AS sensor_count,
                   sum(reading_count) AS reading_count, sum(value_sum) / sum(reading_count) AS avg_value,
                   min(min_value) AS min_value, max(max_value) AS max_value,
                   sum(anomaly_count) AS anomaly_count, sum(expected) :: BIGINT AS expected_count,
                   sum(reading_count) / sum(expected) * 100 AS health_pct,
                   now() AS processing_timestamp, period_start :: DATE AS window_date
            FROM per_sensor GROUP BY ALL
        ) TO '{out / name}' (FORMAT parquet, PARTITION_BY (window_date))"""
        )
    (silver_rows, anomalies) = con.execute(
        f"SELECT count(*), count_if(is_anomaly) FROM read_parquet('{silver}/**/*.parquet')"
    ).fetchone()
    (windows,) = con.execute("SELECT count(*) FROM windows").fetchone()
    con.close()
    return {"silver_rows": silver_rows, "anomalies": anomalies, "windows": windows}


def spark_medallion(spark: Any, bronze: Path, out: Path, window: Any) -> dict[str, int]:
    from spark_jobs import bronze_to_silver, silver_to_gold
    from spark_jobs.medallion import MedallionSettings

    from iotpipe.lake import Lake

    lake = Lake(str(out))
    Path(lake.bronze).parent.mkdir(parents=True)
    Path(lake.bronze).symlink_to(bronze, target_is_directory=True)
    settings = MedallionSettings()
    silver = bronze_to_silver.run(spark, window, settings, lake)
    gold = silver_to_gold.run(spark, window, settings, lake)
    return {
        "silver_rows": silver.counts["silver_rows"],
        "anomalies": silver.counts["anomalies"],
        "windows": gold.counts["windows"],
        "bronze_rows": silver.counts["bronze_rows"],
    }


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, all threads) of this process, plus that of ``pid`` (Linux).

    Recorded next to wall time: on a shared, oversubscribed machine it shows the work
    each side did even when the scheduler starved one of them.
    """
    own = time.process_time()
    if pid is None:
        return own
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return own + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run() -> Result:
    from rich.console import Console

    from iotpipe.spark import session
    from iotpipe.windows import Window

    console = Console()
    window = Window(START, START + timedelta(seconds=SECONDS))
    window_sql = (
        f"\"timestamp\" >= TIMESTAMPTZ '{window.start.isoformat()}' "
        f"AND \"timestamp\" < TIMESTAMPTZ '{window.end.isoformat()}'"
    )
    with console.status("generating 10M Bronze readings (cached)"):
        bronze = generate_bronze(CACHE)
    with console.status("starting Spark local[2] (not timed)"):
        spark = session("iotpipe-bench-medallion", master="local[2]")
        jvm = getattr(getattr(spark.sparkContext._gateway, "proc", None), "pid", None)
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    counts: dict[str, dict[str, int]] = {}
    load = {"load_avg_1m_before": os.getloadavg()[0]}
    for name, job, pid in (
        ("spark", lambda out: spark_medallion(spark, bronze, out, window), jvm),
        ("duckdb", lambda out: duckdb_medallion(bronze, out, window_sql), None),
    ):
        out = CACHE / f"out-{name}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        with console.status(f"{name}: Bronze -> Silver -> Gold"):
            began, began_cpu = time.perf_counter(), cpu_seconds(pid)
            counts[name] = job(out)
            wall[name] = time.perf_counter() - began
            cpu[name] = cpu_seconds(pid) - began_cpu
        load[f"load_avg_1m_after_{name}"] = os.getloadavg()[0]
        console.print(f"{name}: {wall[name]:.1f} s wall, {cpu[name]:.1f} s CPU, {counts[name]}")
        shutil.rmtree(out, ignore_errors=True)
    ratio = wall["spark"] / wall["duckdb"]
    same = all(counts["spark"][k] == counts["duckdb"][k] for k in counts["duckdb"])
    readings = counts["spark"]["bronze_rows"]
    return Result(
        name="medallion",
        metric="Spark local[2] Bronze->Silver->Gold wall time",
        value=wall["spark"],
        unit="s",
        reference="DuckDB (2 threads) same SQL on the same Parquet",
        reference_value=wall["duckdb"],
        target=f"Spark <= {TARGET_RATIO:g}x DuckDB",
        met=ratio <= TARGET_RATIO,
        ratio=ratio,
        extra={
            "readings": readings,
            "spark_counts": counts["spark"],
            "duckdb_counts": counts["duckdb"],
            "same_counts": same,
            "spark_cpu_s": cpu["spark"],
            "duckdb_cpu_s": cpu["duckdb"],
            "cpu_ratio": cpu["spark"] / cpu["duckdb"],
            "spark_readings_per_s": readings / wall["spark"],
            "duckdb_readings_per_s": readings / wall["duckdb"],
            **load,
        },
    )
