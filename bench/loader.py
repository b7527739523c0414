"""The warehouse loader on 1,000,000 Gold rows: binary COPY against executemany INSERT, and a reload.

A fresh PostgreSQL (``iotpipe.local.Postgres`` in a temp folder) gets two empty
databases with the loader's schema. The same Gold slice (1,000 sensors x 1,000
five-minute windows, read from Parquet with the loader's reader) is loaded into each
by the loader's own transaction (lock, stage, checks, delete, insert, dimensions,
commit); the only difference is how rows reach the staging table:

- value: the PostgreSQL dialect as shipped, ``COPY stage_gold FROM STDIN (FORMAT binary)``
  fed with what pgpq encodes from the Arrow table;
- reference: psycopg 3's ``executemany`` of a parameterised INSERT (pipelined by
  psycopg), in batches of 50,000 rows.

Then the same window is loaded again into the COPY database (the reload: the million
rows of the first load are replaced, right after it, without a VACUUM in between), and
the window must hold the same rows as before; then once more after ``VACUUM ANALYZE``
(what autovacuum has done by the time a real reload comes). A CHECKPOINT before each
load, so that no load pays for writing out the pages of the one before.

Both are end-to-end rows/s of a whole load; the staging step alone is in ``extra``.
ratio = COPY rows/s ÷ INSERT rows/s. Targets: COPY ≥ 100,000 rows/s, ≥ 10x INSERT, and
the reload ≤ 1.2x the first load's time.
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
TARGET_RATE = 100_000
TARGET_RATIO = 10.0
TARGET_RELOAD = 1.2
INSERT_BATCH = 50_000
WINDOW_DIGEST = (
    "SELECT COUNT(*), SUM(CAST(CAST('x' || LEFT(MD5(CAST(f AS TEXT)), 15) AS BIT(60)) AS BIGINT)) "
    "FROM fact_sensor_readings AS f"
)
"""The fact rows and an order-independent digest of every value in them (compared before
and after the reload)."""


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run() -> Result:
    import psycopg
    from warehouse_loader.dialects import Connection, Cursor, PostgresDialect
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
    server_cpu: list[float] = []
    """CPU seconds of the server process of each load's connection, in load order."""

    class Metered:
        """The connection, reading its server process's CPU time just before COMMIT."""

        def __init__(self, connection: Any) -> None:
            self.connection = connection
            self.pid = connection.pgconn.backend_pid
            self.started = process_cpu_s(self.pid)

        def cursor(self) -> Any:
            return self.connection.cursor()

        def commit(self) -> None:
            server_cpu.append(process_cpu_s(self.pid) - self.started)
            self.connection.commit()

        def rollback(self) -> None:
            self.connection.rollback()

        def close(self) -> None:
            self.connection.close()

    class MeteredPostgres(PostgresDialect):
        def connect(self) -> Connection:
            return Metered(super().connect())

    class TimedCopy(MeteredPostgres):
        def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> int:
            started = time.perf_counter()
            staged = super().fill_stage(cursor, gold)
            staging["copy"] = time.perf_counter() - started
            return staged

    class ExecutemanyInsert(MeteredPostgres):
        def fill_stage(self, cursor: Cursor, gold: GoldSlice) -> int:
            # The window's rows only, counted as sent (as the COPY path does).
            started, staged = time.perf_counter(), 0
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
                staged += batch.num_rows
            staging["insert"] = time.perf_counter() - started
            return staged

    console = Console()
    load_average: dict[str, float] = {"load_average_1m_before": os.getloadavg()[0]}
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
        cpu: dict[str, float] = {}
        warehouses: dict[str, Warehouse] = {}

        def timed_load(name: str, warehouse: Warehouse, deleted: int) -> None:
            # Every load starts with no dirty pages left by the one before (a real reload
            # comes hours later, after checkpoints): else the reload pays for writing out
            # the first load's pages.
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute("CHECKPOINT")
            with console.status(f"{name}: loading {rows:,} rows..."):
                started, client_started = time.perf_counter(), time.process_time()
                counts = warehouse.load(gold)
                seconds[name] = time.perf_counter() - started
                cpu[f"{name}_client_cpu_s"] = time.process_time() - client_started
                cpu[f"{name}_server_cpu_s"] = server_cpu[-1]
            load_average[f"load_average_1m_after_{name}"] = os.getloadavg()[0]
            assert (counts.rows_deleted, counts.rows_inserted) == (deleted, rows), counts
            console.print(f"{name}: {rows / seconds[name]:,.0f} rows/s ({seconds[name]:.1f} s)")

        def digest(warehouse: Warehouse) -> tuple[Any, ...]:
            with warehouse.transaction() as cursor:
                cursor.execute(WINDOW_DIGEST)
                return tuple(cursor.fetchone())

        for name, dialect_type in (("copy", TimedCopy), ("insert", ExecutemanyInsert)):
            with psycopg.connect(server.dsn, autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE bench_{name}")
            settings = LoaderSettings(
                api_token="bench-token-0000000",
                warehouse_dsn=server.dsn.rsplit("/", 1)[0] + f"/bench_{name}",
            )
            warehouses[name] = Warehouse(dialect_type(settings))
            warehouses[name].migrate()
            timed_load(name, warehouses[name], deleted=0)
            assert digest(warehouses[name])[0] == rows
            if name == "copy":
                before = digest(warehouses["copy"])
                staging["copy_first"] = staging["copy"]
                timed_load("reload", warehouses["copy"], deleted=rows)
                assert digest(warehouses["copy"]) == before, "the reload changed the window"
                staging["copy_reload"] = staging["copy"]
                # What autovacuum would have done by the time of a real reload.
                copy_dsn = server.dsn.rsplit("/", 1)[0] + "/bench_copy"
                with psycopg.connect(copy_dsn, autocommit=True) as admin:
                    admin.execute("VACUUM ANALYZE fact_sensor_readings")
                timed_load("reload_vacuumed", warehouses["copy"], deleted=rows)
                assert digest(warehouses["copy"]) == before, "the reload changed the window"
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    copy_rate, insert_rate = rows / seconds["copy"], rows / seconds["insert"]
    ratio = copy_rate / insert_rate
    reload_ratio = seconds["reload"] / seconds["copy"]
    extra: dict[str, Any] = {
        "rows": rows,
        "copy_load_s": round(seconds["copy"], 2),
        "insert_load_s": round(seconds["insert"], 2),
        "reload_s": round(seconds["reload"], 2),
        "reload_rows_per_s": round(rows / seconds["reload"]),
        "reload_ratio": round(reload_ratio, 3),
        "reload_vacuumed_s": round(seconds["reload_vacuumed"], 2),
        "reload_vacuumed_ratio": round(seconds["reload_vacuumed"] / seconds["copy"], 3),
        "copy_staging_rows_per_s": round(rows / staging["copy_first"]),
        "reload_staging_rows_per_s": round(rows / staging["copy_reload"]),
        "insert_staging_rows_per_s": round(rows / staging["insert"]),
        "staging_ratio": round(staging["insert"] / staging["copy_first"], 2),
        "gold_read_s": round(read_s, 2),
        "insert_batch": INSERT_BATCH,
        "reload_server_cpu_ratio": round(cpu["reload_server_cpu_s"] / cpu["copy_server_cpu_s"], 3),
        **{key: round(value, 2) for key, value in cpu.items()},
        **{key: round(value, 2) for key, value in load_average.items()},
    }
    return Result(
        name="loader",
        metric="binary COPY load of 1M Gold rows into PostgreSQL",
        value=copy_rate,
        unit="rows/s",
        reference="executemany INSERT load (psycopg 3, same transaction otherwise)",
        reference_value=insert_rate,
        target=(
            f"COPY >= {TARGET_RATE:,} rows/s and >= {TARGET_RATIO:.0f}x executemany INSERT; "
            f"reload <= {TARGET_RELOAD}x the first load"
        ),
        met=copy_rate >= TARGET_RATE and ratio >= TARGET_RATIO and reload_ratio <= TARGET_RELOAD,
        ratio=ratio,
        extra=extra,
    )
