"""``warehouse-loader load``: the real entry point in a subprocess, against a real
PostgreSQL, the test lake's Gold and the fake gate; exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess

import psycopg
import pyarrow as pa
import pytest
from warehouse_loader.settings import LoaderSettings

from iotpipe.gate_client import Verdict
from tests.cli import run_module

from .conftest import SENSORS, TOKEN, WINDOW, GateServer, facts, gold_rows

pytestmark = pytest.mark.integration

ROWS = 24 * SENSORS
"""Gold rows in WINDOW: 24 five-minute windows of 40 sensors."""


def loader(settings: LoaderSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m warehouse_loader ARGS`` configured like the service, from the environment."""
    env = {
        "LOADER_API_TOKEN": TOKEN,
        "LOADER_WAREHOUSE_DSN": settings.warehouse_dsn.get_secret_value(),
        "LOADER_QUALITY_GATE_URL": str(settings.quality_gate_url),
        "LOADER_GATE_TIMEOUT_S": "2",
        "LOADER_LOG_JSON": "false",
        "LAKE_ROOT": settings.lake.root,
    }
    return run_module(
        ["warehouse_loader", *args], drop=("LOADER_", "LAKE_", "WAREHOUSE_DSN"), env=env
    )


def history(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT status, gate_verdict FROM load_history ORDER BY requested_at"
        ).fetchall()


def test_load_loads_the_window_exactly_and_reload_replaces_it(
    settings: LoaderSettings, gold: pa.Table
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()

    first = loader(settings, "load", str(WINDOW), "--output", "json")
    assert first.returncode == 0, first.stderr
    record = json.loads(first.stdout)
    assert (record["status"], record["gold_rows"]) == ("succeeded", ROWS)
    assert (record["rows_deleted"], record["rows_inserted"]) == (0, ROWS)
    assert record["gate_verdict"] == "pass"
    assert facts(dsn) == gold_rows(gold, WINDOW)
    assert len(facts(dsn)) == 960

    again = loader(settings, "load", str(WINDOW), "-o", "json")
    assert again.returncode == 0, again.stderr
    reloaded = json.loads(again.stdout)
    assert (reloaded["rows_deleted"], reloaded["rows_inserted"]) == (ROWS, ROWS)
    assert facts(dsn) == gold_rows(gold, WINDOW)
    assert history(dsn) == [("succeeded", "pass"), ("succeeded", "pass")]

    as_table = loader(settings, "load", str(WINDOW))  # people get a table
    assert as_table.returncode == 0, as_table.stderr
    assert "succeeded" in as_table.stdout
    assert f"{ROWS}" in as_table.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(as_table.stdout)


def test_a_gate_that_did_not_pass_refuses_with_exit_1_and_the_reason(
    settings: LoaderSettings, gate: GateServer, gold: pa.Table
) -> None:
    dsn = settings.warehouse_dsn.get_secret_value()
    gate.set(WINDOW, Verdict.FAIL, ["expect_column_values_to_not_be_null(location)"])

    refused = loader(settings, "load", str(WINDOW), "--output", "json")

    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    record = json.loads(refused.stdout)
    assert (record["status"], record["gate_verdict"], record["rows_inserted"]) == (
        "refused",
        "fail",
        None,
    )
    message = f"load {record['id']} refused: Gold gate verdict for {WINDOW} is fail"
    assert message in refused.stderr.replace("\n", "")
    assert "expect_column_values_to_not_be_null(location)" in record["detail"]
    assert facts(dsn) == []
    assert history(dsn) == [("refused", "fail")]

    reason = "null locations are expected for unplaced sensors (ticket OPS-12)"
    overridden = loader(settings, "load", str(WINDOW), "--override-reason", reason, "-o", "json")
    assert overridden.returncode == 0, overridden.stderr
    assert json.loads(overridden.stdout)["override_reason"] == reason
    assert facts(dsn) == gold_rows(gold, WINDOW)


def test_a_window_without_gold_is_refused(settings: LoaderSettings) -> None:
    empty = loader(settings, "load", "2026-12-01")
    assert empty.returncode == 1, empty.stderr
    assert "has no rows for 2026-12-01T00:00:00Z--2026-12-02T00:00:00Z" in empty.stderr.replace(
        "\n", ""
    )
    assert facts(settings.warehouse_dsn.get_secret_value()) == []


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("2026-11-26T10:03:00Z--2026-11-26T11:00:00Z", "is not on a 5-minute boundary"),
        ("2026-10-01T00:00:00Z--2026-12-01T00:00:00Z", "the window spans more than 31 days"),
        ("yesterday", "invalid window 'yesterday'"),
    ],
)
def test_bad_windows_are_usage_errors(settings: LoaderSettings, window: str, message: str) -> None:
    result = loader(settings, "load", window)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in " ".join(result.stderr.replace("│", " ").split())
    with psycopg.connect(settings.warehouse_dsn.get_secret_value()) as conn:
        untouched = conn.execute("SELECT to_regclass('load_history') IS NULL").fetchone()
    assert untouched == (True,)  # refused before the warehouse was touched
