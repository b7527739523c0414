"""The warehouse loader on 1,000,000 Gold rows: COPY FROM STDIN against executemany INSERT.

A fresh PostgreSQL (``iotpipe.local.Postgres`` in a temp folder) gets two empty
databases with the loader's schema. The same Gold slice (1,000 sensors x 1,000
five-minute windows, read from Parquet with the loader's reader) is loaded into each
by the loader's own transaction (lock, stage, checks, dimensions, delete, insert,
commit); the only difference is how rows reach the staging table:

- value: the PostgreSQL dialect as shipped, ``COPY stage_gold FROM STDIN`` fed with
  CSV that pyarrow writes;
- reference: psycopg 3's ``executemany`` of a parameterised INSERT (pipelined by
  psycopg), in batches of 50,000 rows.

Both are end-to-end rows/s of a whole load; the staging step alone is in ``extra``.
ratio = COPY rows/s ÷ INSERT rows/s; target: COPY ≥ 3x INSERT.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.harness import Result

ROWS_SENSORS = 1_000
ROWS_WINDOWS = 1_000
START = datetime(2026, 11, 20, tzinfo=UTC)
TARGET_RATIO = 3.0
INSERT_BATCH = 50_000


def run() -> Result:
    import psycopg
    from warehouse_loader.dialects import Cursor, PostgresDialect
    from warehouse_loader.gold import GoldSlice, read_gold
    from warehouse_loader.sample import sample_gold, write_gold
    from warehouse_loader.schema import STAGE_GOLD
    from warehouse_loader.settings import LoaderSettings
    from warehouse_loader.warehouse import Warehouse

    from iotpipe.lake import Lake
    from iotpipe.local import Postgres
    from iotpipe.local.process import free_port
    from iotpipe.windows import Window

    staging: dict[str, float] = {}

    class TimedCopy(PostgresDialect):
        def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> None:
            started = time.perf_counter()
            super().fill_stage(cursor, gold)
            staging["copy"] = time.perf_counter() - started

    class ExecutemanyInsert(PostgresDialect):
        def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> None:
            started = time.perf_counter()
            columns = STAGE_GOLD.column_names
            sql = (
                f"INSERT INTO {STAGE_GOLD.name} ({', '.join(columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))})"
            )
            naive = {"window_start", "window_end", "processing_timestamp"}
            for batch in gold.table.to_batches(max_chunksize=INSERT_BATCH):
                values = [
                    [v.replace(tzinfo=None) for v in batch[c].to_pylist()]
                    if c in naive
                    else batch[c].to_pylist()
                    for c in columns
                ]
                cursor.executemany(sql, list(zip(*values, strict=True)))  # type: ignore[attr-defined]
            staging["insert"] = time.perf_counter() - started

    console = Console()
    home = Path(tempfile.mkdtemp(prefix="iotpipe-bench-loader-"))
    os.chmod(home, 0o755)  # PostgreSQL runs as its own user when we are root
    server = Postgres(home / "postgres", port=free_port())
    try:
        with console.status("generating 1,000,000 Gold rows..."):
            lake = Lake(str(home / "lake"))
            write_gold(
                lake.gold_windows, sample_gold(START, windows=ROWS_WINDOWS, sensors=ROWS_SENSORS)
            )
            window = Window(START, START + ROWS_WINDOWS * timedelta(minutes=5))
            read_started = time.perf_counter()
            gold = read_gold(lake, window)
            read_s = time.perf_counter() - read_started
        rows = gold.rows
        assert rows == ROWS_SENSORS * ROWS_WINDOWS
        with console.status("starting PostgreSQL..."):
            server.start()
        seconds: dict[str, float] = {}
        for name, dialect_type in (("copy", TimedCopy), ("insert", ExecutemanyInsert)):
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE bench_{name}")
            settings = LoaderSettings(
                api_token="bench-token-0000000",
                warehouse_dsn=server.dsn.rsplit("/", 1)[0] + f"/bench_{name}",
            )
            warehouse = Warehouse(dialect_type(settings))
            warehouse.migrate()
            with console.status(f"loading {rows:,} rows via {name}..."):
                started = time.perf_counter()
                counts = warehouse.load(gold)
                seconds[name] = time.perf_counter() - started
            assert counts.rows_inserted == rows, counts
            with warehouse.transaction() as cursor:
                cursor.execute("SELECT COUNT(*) FROM fact_sensor_readings")
                assert cursor.fetchone()[0] == rows
            console.print(f"{name}: {rows / seconds[name]:,.0f} rows/s ({seconds[name]:.1f} s)")
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    copy_rate, insert_rate = rows / seconds["copy"], rows / seconds["insert"]
    extra: dict[str, Any] = {
        "rows": rows,
        "copy_load_s": round(seconds["copy"], 2),
        "insert_load_s": round(seconds["insert"], 2),
        "copy_staging_rows_per_s": round(rows / staging["copy"]),
        "insert_staging_rows_per_s": round(rows / staging["insert"]),
        "staging_ratio": round(staging["insert"] / staging["copy"], 2),
        "gold_read_s": round(read_s, 2),
        "insert_batch": INSERT_BATCH,
    }
    ratio = copy_rate / insert_rate
    return Result(
        name="loader",
        metric="COPY load of 1M Gold rows into PostgreSQL",
        value=copy_rate,
        unit="rows/s",
        reference="executemany INSERT load (psycopg 3, same transaction otherwise)",
        reference_value=insert_rate,
        target=f"COPY >= {TARGET_RATIO:.0f}x executemany INSERT",
        met=ratio >= TARGET_RATIO,
        ratio=ratio,
        extra=extra,
    )
