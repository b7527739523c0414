"""``quality-gate run`` and ``suites`` through the real entry point (a subprocess), over
real Parquet in a lake folder; ``--output json`` parsed back."""

from __future__ import annotations

import json
import subprocess

import pytest
from quality_gate.suites import suite_names

from iotpipe.gate_client import Layer
from iotpipe.lake import Lake
from iotpipe.windows import Window
from tests.cli import run_module

from . import lakedata
from .conftest import TOKEN

pytestmark = pytest.mark.integration

HOUR = Window.parse("2026-11-20T10")


def gate(lake: Lake, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"QUALITY_API_TOKEN": TOKEN, "LAKE_ROOT": lake.root, "QUALITY_ENGINE": "pandas"}
    return run_module(["quality_gate", *args], drop=("QUALITY_", "LAKE_"), env=env, timeout=600)


def test_run_as_json_passes_a_clean_window_and_fails_a_broken_one(lake: Lake) -> None:
    clean = lakedata.readings(HOUR)
    lakedata.write(lake, Layer.SILVER, clean)

    passed = gate(lake, "run", "silver", str(HOUR), "--output", "json")

    assert passed.returncode == 0, passed.stderr
    result = json.loads(passed.stdout)
    assert (result["verdict"], result["row_count"]) == ("pass", len(clean))
    assert result["failed_expectations"] == []
    assert sorted(e["name"] for e in result["expectations"]) == sorted(suite_names(Layer.SILVER))

    broken = clean.copy()
    humidity = broken.index[broken["sensor_type"] == "humidity"][:12]
    broken.loc[humidity, "value"] = 140.0
    lakedata.write(lake, Layer.SILVER, broken)
    failed = gate(lake, "run", "silver", str(HOUR), "-o", "json")
    assert failed.returncode == 1, failed.stderr
    result = json.loads(failed.stdout)
    assert (result["verdict"], result["failed_expectations"]) == (
        "fail",
        ["value_in_bounds:humidity"],
    )


def test_suites_as_json(lake: Lake) -> None:
    listed = gate(lake, "suites", "gold", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == suite_names(Layer.GOLD)
    assert len(suite_names(Layer.GOLD)) > 3
