"""`orchestrator check-freshness` on a real (local) lake: exit status, webhook, metrics."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from orchestrator.cli import app
from typer.testing import CliRunner

from .conftest import Receiver

pytestmark = pytest.mark.integration


def bronze_file(lake: Path, minutes_old: float) -> Path:
    path = (
        lake
        / "bronze"
        / "sensor_readings"
        / "event_date=2026-11-26"
        / "event_hour=3"
        / "part-0.parquet"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1")
    stamp = time.time() - minutes_old * 60
    os.utime(path, (stamp, stamp))
    return path


def test_fresh_bronze_passes_silently(receiver: Receiver, local_env: dict[str, str]) -> None:
    bronze_file(Path(local_env["LAKE_ROOT"]), minutes_old=5)
    result = CliRunner().invoke(app, ["check-freshness"], env=local_env)
    assert result.exit_code == 0, result.output
    assert receiver.texts() == []
    push = receiver.to("/metrics/job/orchestrator/kind/freshness")[0].body.decode()
    assert "orchestrator_last_run_success 1.0" in push


def test_stale_bronze_misses_the_sla_and_notifies(
    receiver: Receiver, local_env: dict[str, str]
) -> None:
    bronze_file(Path(local_env["LAKE_ROOT"]), minutes_old=45)
    result = CliRunner().invoke(app, ["check-freshness"], env=local_env)
    assert result.exit_code == 1, result.output
    [text] = receiver.texts()
    assert "SLA miss" in text
    assert "STALE" in text
    assert "SLA 30 min" in text
    push = receiver.to("/metrics/job/orchestrator/kind/freshness")[0].body.decode()
    assert "orchestrator_last_run_success 0.0" in push  # the SLA miss
    assert "orchestrator_last_success_timestamp_seconds" not in push


def test_empty_bronze_is_a_miss(receiver: Receiver, local_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["check-freshness"], env=local_env)
    assert result.exit_code == 1
    [text] = receiver.texts()
    assert "has no committed data files" in text


def test_freshness_as_json(receiver: Receiver, local_env: dict[str, str]) -> None:
    lake = Path(local_env["LAKE_ROOT"])
    bronze_file(lake, minutes_old=5)
    fresh = CliRunner().invoke(app, ["check-freshness", "--output", "json"], env=local_env)
    assert fresh.exit_code == 0, fresh.output
    report = json.loads(fresh.stdout)
    assert (report["kind"], report["ok"], report["failures"]) == ("freshness", True, [])
    assert report["location"] == str(lake / "bronze" / "sensor_readings")
    assert 4.5 < report["age_minutes"] < 6.5
    assert report["sla_minutes"] == 30

    bronze_file(lake, minutes_old=45)
    stale = CliRunner().invoke(app, ["check-freshness", "-o", "json"], env=local_env)
    assert stale.exit_code == 1
    report = json.loads(stale.stdout)
    assert report["ok"] is False
    assert 44.5 < report["age_minutes"] < 46.5
    [failure] = report["failures"]
    assert "STALE" in failure
