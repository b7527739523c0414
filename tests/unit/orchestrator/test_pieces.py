"""Pure pieces of the orchestrator: names, freshness arithmetic, newest partition, metrics."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.cli import window_document
from orchestrator.deadlines import StepDeadlines
from orchestrator.freshness import Freshness, newest_file_time
from orchestrator.metrics import push_run
from orchestrator.pipeline import StepFailed, WindowResult, app_name
from orchestrator.sparkapps import state_of

from iotpipe.windows import Window

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def test_app_names_are_per_job_and_window() -> None:
    assert app_name("iotpipe", "bronze-to-silver", Window.parse("2026-11-25")) == (
        "iotpipe-bronze-to-silver-20261125"
    )
    assert app_name("iotpipe", "silver-to-gold", Window.parse("2026-11-25T10")) == (
        "iotpipe-silver-to-gold-20261125t1000"
    )


def test_state_of_an_application_the_operator_has_not_seen_is_empty() -> None:
    assert state_of({"metadata": {}}) == ""
    assert state_of({"status": {"applicationState": {"state": "RUNNING"}}}) == "RUNNING"


def test_freshness_sla_boundary() -> None:
    sla = timedelta(minutes=30)
    assert Freshness("b", NOW - sla, NOW, sla).ok  # exactly 30 minutes is still on time
    assert not Freshness("b", NOW - sla - timedelta(seconds=1), NOW, sla).ok
    assert not Freshness("b", None, NOW, sla).ok


def _file(root: Path, date: str, hour: str, when: datetime) -> None:
    path = root / f"event_date={date}" / f"event_hour={hour}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_newest_partition_is_numeric_by_hour_and_ignores_metadata(tmp_path: Path) -> None:
    _file(tmp_path, "2026-11-26", "9", NOW - timedelta(hours=2))
    _file(tmp_path, "2026-11-26", "10", NOW - timedelta(minutes=3))  # "10" > "9" as numbers
    _file(tmp_path, "2026-11-25", "23", NOW)  # an older day, rewritten later: not the newest data
    (tmp_path / "_spark_metadata").mkdir()
    assert newest_file_time(str(tmp_path)) == NOW - timedelta(minutes=3)


def test_no_bronze_at_all(tmp_path: Path) -> None:
    assert newest_file_time(str(tmp_path / "missing")) is None


def test_failed_run_does_not_push_a_last_success() -> None:
    registry = push_run(None, "daily", success=False)
    assert registry.get_sample_value("orchestrator_last_run_success") == 0
    assert registry.get_sample_value("orchestrator_last_run_timestamp_seconds") is not None
    assert registry.get_sample_value("orchestrator_last_success_timestamp_seconds") is None
    ok = push_run(None, "daily", success=True)
    assert ok.get_sample_value("orchestrator_last_run_success") == 1
    assert ok.get_sample_value("orchestrator_last_success_timestamp_seconds") is not None


def test_a_window_outcome_as_json() -> None:
    day = Window.parse("2026-11-02")
    failed = WindowResult(
        day,
        ok=False,
        applications=["iotpipe-bronze-to-silver-20261102"],
        error=StepFailed("silver-to-gold", "test operator: FAILED"),
    )
    loaded = WindowResult(day, ok=True, load={"id": "load-1", "rows_inserted": 960})
    documents = json.loads(json.dumps([window_document(failed), window_document(loaded)]))
    assert documents == [
        {
            "window": "2026-11-02T00:00:00Z--2026-11-03T00:00:00Z",
            "ok": False,
            "applications": ["iotpipe-bronze-to-silver-20261102"],
            "load": None,
            "failed_step": "silver-to-gold",
            "error": "test operator: FAILED",
        },
        {
            "window": "2026-11-02T00:00:00Z--2026-11-03T00:00:00Z",
            "ok": True,
            "applications": [],
            "load": {"id": "load-1", "rows_inserted": 960},
            "failed_step": None,
            "error": None,
        },
    ]


def test_a_run_pushes_every_step_so_a_late_one_clears_next_time() -> None:
    registry = push_run(
        None, "daily", success=True, steps_missed={"silver-to-gold": True, "warehouse-load": False}
    )
    value = registry.get_sample_value
    assert value("orchestrator_step_deadline_missed", {"step": "silver-to-gold"}) == 1
    assert value("orchestrator_step_deadline_missed", {"step": "warehouse-load"}) == 0


def test_a_step_not_done_by_its_deadline_is_late_even_if_it_finishes() -> None:
    reports: list[tuple[str, float]] = []
    both_late = threading.Event()

    def late(step: str, deadline: float) -> None:
        reports.append((step, deadline))
        if len(reports) == 2:
            both_late.set()

    deadlines = {"fast": 30.0, "slow": 0.05, "later": 0.1}
    with StepDeadlines(deadlines, late) as watch:
        watch.done("fast")  # in time
        assert both_late.wait(10)
        watch.done("slow")  # it finishes, but late
        watch.done("later")
    assert reports == [("slow", 0.05), ("later", 0.1)]
    assert watch.missed() == {"fast": False, "slow": True, "later": True}


def test_steps_never_reached_are_not_late_once_the_run_ends() -> None:
    reports: list[str] = []
    with StepDeadlines({"load": 0.2}, lambda step, _: reports.append(step)) as watch:
        pass  # the run failed before the load
    time.sleep(0.4)
    assert reports == []
    assert watch.missed() == {"load": False}
