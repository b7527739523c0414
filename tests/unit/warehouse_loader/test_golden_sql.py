"""Golden files: the exact SQL each dialect sends for the migrations and for a load.

The Redshift path has not run against a live Redshift here; these files are what it
would send (DDL with DISTKEY/SORTKEY, COPY ... FORMAT AS PARQUET with the IAM role,
the range DELETE and the INSERT from staging), reviewed by eye and held still by
this test. Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest ...``
and review the diff.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from warehouse_loader.dialects import DIALECTS, Dialect
from warehouse_loader.gold import GoldSlice, read_gold
from warehouse_loader.sample import sample_gold, write_gold
from warehouse_loader.settings import LoaderSettings
from warehouse_loader.warehouse import Warehouse

from iotpipe.lake import Lake
from iotpipe.windows import Window

GOLDEN = Path(__file__).parent / "golden"
WINDOW = Window.parse("2026-11-26T23:00:00Z--2026-11-27T01:00:00Z")
SETTINGS: dict[str, dict[str, Any]] = {
    "postgresql": {"warehouse_dsn": "postgresql://loader:secret@warehouse:5432/iotpipe"},
    "redshift": {
        "warehouse_dsn": "redshift://loader:secret@wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/iotpipe",
        "redshift_iam_role": "arn:aws:iam::123456789012:role/iotpipe-redshift-copy",
        "lake": {"root": "s3a://iotpipe-lake/prod"},
    },
}


class Recorder:
    """A DB-API connection and cursor that writes down what it is asked to run.

    Counting queries answer as a consistent warehouse would: staged rows = Gold rows,
    no duplicate keys, INSERT inserts them all.
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.log: list[str] = []
        self.rowcount = -1
        self._last = ""

    def cursor(self) -> Recorder:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        self._last = sql
        if sql.startswith("INSERT INTO schema_migrations"):
            params = [*params[:-1], "<now>"]  # applied_at
        self.log.append(f"{sql};" + (f"\n-- parameters: {list(params)!r}" if params else ""))
        self.rowcount = self.rows if sql.startswith(("INSERT INTO fact", "DELETE FROM fact")) else 0

    def fetchone(self) -> tuple[int]:
        return (self.rows if self._last.startswith("SELECT COUNT(*) FROM stage_gold") else 0,)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return []

    @contextmanager
    def copy(self, sql: str) -> Any:
        class Sink:
            def write(inner, data: bytes) -> None:  # noqa: N805
                self.log.append(f"-- COPY data: {len(data)} bytes")

        self.log.append(f"{sql};")
        yield Sink()
        self.rowcount = self.rows  # what COPY reports it stored

    def commit(self) -> None:
        self.log.append("COMMIT;")

    def rollback(self) -> None:
        self.log.append("ROLLBACK;")

    def close(self) -> None:
        pass


def recording(name: str, rows: int) -> tuple[Dialect, Recorder]:
    recorder = Recorder(rows)
    base = DIALECTS[name]
    dialect_type = type(f"Recording{base.__name__}", (base,), {"connect": lambda self: recorder})
    settings = LoaderSettings(api_token="t" * 16, dialect=name, **SETTINGS[name])
    return dialect_type(settings), recorder


def gold_slice(tmp_path: Path, settings: LoaderSettings) -> GoldSlice:
    local = Lake(str(tmp_path / "lake"))
    write_gold(local.gold_windows, sample_gold(WINDOW.start, windows=24, sensors=3))
    gold = read_gold(local, WINDOW)
    # The data is local; the location is where the configured lake keeps it.
    return GoldSlice(
        window=gold.window,
        location=Lake.from_settings(settings.lake).gold_windows,
        table=gold.table,
        days=gold.days,
        fingerprints=gold.fingerprints,
    )


def render(name: str, tmp_path: Path) -> str:
    dialect, recorder = recording(name, rows=24 * 3)
    warehouse = Warehouse(dialect)
    recorder.log.append(f"-- {name}: schema migrations, on an empty warehouse")
    warehouse.migrate()
    recorder.log.append(f"\n-- {name}: load of {WINDOW} (72 Gold rows in 2 partitions)")
    warehouse.load(gold_slice(tmp_path, dialect.settings))
    return "\n".join(recorder.log) + "\n"


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_statements_match_the_golden_file(name: str, tmp_path: Path) -> None:
    path = GOLDEN / f"{name}.sql"
    text = render(name, tmp_path)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"SQL changed; review and regenerate {path}"


def test_redshift_copies_each_partition_from_s3_with_the_role(tmp_path: Path) -> None:
    dialect, _ = recording("redshift", rows=0)
    statements = dialect.copy_statements(gold_slice(tmp_path, dialect.settings))  # type: ignore[attr-defined]
    assert [s.splitlines()[1] for s in statements] == [
        "FROM 's3://iotpipe-lake/prod/gold/sensor_windows_5m/window_date=2026-11-26/'",
        "FROM 's3://iotpipe-lake/prod/gold/sensor_windows_5m/window_date=2026-11-27/'",
    ]
    assert all(
        "IAM_ROLE 'arn:aws:iam::123456789012:role/iotpipe-redshift-copy'" in s for s in statements
    )


def test_a_failed_check_rolls_back_before_the_delete(tmp_path: Path) -> None:
    dialect, recorder = recording("postgresql", rows=72)
    gold = gold_slice(tmp_path, dialect.settings)
    recorder.rows = 71  # the stage holds fewer rows than Gold: something changed under us
    with pytest.raises(RuntimeError, match="staged 71 rows"):
        Warehouse(dialect).load(gold)
    assert recorder.log[-1] == "ROLLBACK;"
    assert not any(s.startswith("DELETE FROM fact") for s in recorder.log)
