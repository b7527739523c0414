"""The Spark jobs' entry script (spark-operator/image/entry.py)."""

from __future__ import annotations

import importlib.util
import sys
import types
from datetime import UTC, datetime

import pytest

from iotpipe.windows import Window

from .manifests import REPO


@pytest.fixture(scope="module")
def entry():
    spec = importlib.util.spec_from_file_location(
        "iotpipe_entry", REPO / "spark-operator/image/entry.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_relative_windows_resolve_to_the_window_that_just_closed(entry):
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    args = entry.resolve(["--window", "previous-hour", "--x", "previous-day"], now)
    assert args == ["--window", "2025-12-31T23", "--x", "2025-12-31"]
    assert Window.parse(args[1]) == Window(
        datetime(2025, 12, 31, 23, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert Window.parse(args[3]).end == datetime(2026, 1, 1, tzinfo=UTC)
    assert entry.resolve(["--start", "2026-01-01"], now) == ["--start", "2026-01-01"]


def test_main_runs_the_named_job(entry, monkeypatch):
    seen = []

    def fake_main(argv):
        seen.append(argv)
        return 0

    fake = types.ModuleType("spark_jobs.silver_to_gold")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spark_jobs.silver_to_gold", fake)
    assert entry.main(["silver_to_gold", "--window", "2026-01-01"]) == 0
    assert seen == [["--window", "2026-01-01"]]


def test_main_refuses_an_unknown_job(entry, capsys):
    assert entry.main(["drop_everything"]) == 2
    assert "bronze_stream" in capsys.readouterr().out
    assert entry.main([]) == 2
