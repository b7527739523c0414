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


def _file(root: Path, date: str, hour: str, when: datetime, name: str = "part-0.parquet") -> Path:
    path = root / f"event_date={date}" / f"event_hour={hour}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def _commit(root: Path, batch: int, *files: Path) -> None:
    """A file sink log entry (``_spark_metadata/<batch>``) that adds these files."""
    log = root / "_spark_metadata"
    log.mkdir(exist_ok=True)
    lines = [json.dumps({"path": f.as_uri(), "action": "add"}) for f in files]
    (log / str(batch)).write_text("\n".join(["v1", *lines]))


def test_newest_partition_is_numeric_by_hour(tmp_path: Path) -> None:
    _file(tmp_path, "2026-11-25", "9", NOW - timedelta(hours=2))
    _file(tmp_path, "2026-11-25", "10", NOW - timedelta(minutes=3))  # "10" > "9" as numbers
    _file(tmp_path, "2026-11-24", "23", NOW)  # an older day, rewritten later: not the newest data
    (tmp_path / "_SUCCESS").touch()  # a batch writer's marker, no sink log: every file counts
    assert newest_file_time(str(tmp_path), NOW) == NOW - timedelta(minutes=3)


def test_only_files_the_sink_log_commits_count(tmp_path: Path) -> None:
    """Beside the committed files: a newer orphan of a failed attempt in the same partition,
    and a newer hour whose only file is one being written. Neither makes Bronze fresh; the
    newest partition with a committed file is the one that counts."""
    old = _file(tmp_path, "2026-11-26", "2", NOW - timedelta(hours=2), "part-00000-a.parquet")
    committed = _file(
        tmp_path, "2026-11-26", "3", NOW - timedelta(minutes=50), "part-00000-b.parquet"
    )
    _commit(tmp_path, 0, old)
    _commit(tmp_path, 1, committed)
    _file(tmp_path, "2026-11-26", "3", NOW - timedelta(minutes=1), "part-00001-orphan.parquet")
    _file(tmp_path, "2026-11-26", "4", NOW, "part-00000-being-written.parquet")
    assert newest_file_time(str(tmp_path), NOW) == NOW - timedelta(minutes=50)


def test_an_empty_sink_log_commits_nothing(tmp_path: Path) -> None:
    _file(tmp_path, "2026-11-26", "3", NOW)
    (tmp_path / "_spark_metadata").mkdir()
    assert newest_file_time(str(tmp_path), NOW) is None


def test_a_future_partition_cannot_pin_freshness(tmp_path: Path) -> None:
    """Partitions that start later than now + the contract's bound ahead are passed over,
    whatever their files' times: the stream dead-letters such events."""
    now = _file(tmp_path, "2026-11-26", "3", NOW - timedelta(minutes=5))
    _commit(tmp_path, 0, now)
    for date, hour in (("2099-01-01", "0"), ("2026-11-26", "6"), ("2026-11-27", "0")):
        _commit(
            tmp_path, 1, _file(tmp_path, date, hour, NOW - timedelta(days=3), "part-old.parquet")
        )
        assert newest_file_time(str(tmp_path), NOW) == NOW - timedelta(minutes=5), (date, hour)
    # within the bound (an hour ahead by default) a partition is today's data
    ahead = _file(tmp_path, "2026-11-26", "5", NOW - timedelta(minutes=2), "part-ahead.parquet")
    _commit(tmp_path, 2, ahead)
    assert newest_file_time(str(tmp_path), NOW) == NOW - timedelta(minutes=2)
    assert newest_file_time(str(tmp_path), NOW, timedelta(minutes=30)) == NOW - timedelta(minutes=5)


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
