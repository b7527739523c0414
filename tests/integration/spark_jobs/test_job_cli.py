"""A medallion job through its real entry point, as a user runs it (a subprocess with its
own JVM): ``--output json`` leaves stdout to the report alone, the JVM's log goes to stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iotpipe.gate_client import Layer
from iotpipe.lake import Lake
from iotpipe.windows import Window
from tests.cli import run_module
from tests.integration.quality_gate import lakedata

pytestmark = pytest.mark.integration

HOUR = Window.parse("2026-11-20T10")


def test_silver_to_gold_reports_as_json_on_a_clean_stdout(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    silver = lakedata.readings(HOUR)
    lakedata.write(lake, Layer.SILVER, silver)

    job = ["spark_jobs.silver_to_gold", "--window", str(HOUR), "--lake-root", lake.root]
    result = run_module([*job, "--output", "json"], drop=("MEDALLION_", "LAKE_"), timeout=600)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing else on stdout, the JVM's warnings included
    assert (report["job"], report["window"]) == ("silver_to_gold", str(HOUR))
    assert report["counts"]["silver_rows"] == len(silver) == 960
    assert report["counts"]["windows"] == lakedata.SENSORS * 12
    assert report["partitions"] == ["window_date=2026-11-20"]
    assert "WARN" in result.stderr  # the JVM did log (to stderr)
