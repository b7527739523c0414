"""Large slices are validated on Spark: the same suite gives the same verdicts."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pyspark.sql import SparkSession
from quality_gate.app import build_app

from iotpipe.gate_client import Layer
from iotpipe.lake import Lake
from iotpipe.windows import Window, window_params
from tests import jobs

from . import lakedata
from .conftest import AUTH, settings_for

pytestmark = pytest.mark.integration


def test_spark_engine_finds_silver_duplicates(spark: SparkSession, lake: Lake) -> None:
    hour = Window.parse("2026-11-20T10")
    frame = lakedata.readings(hour)
    lakedata.write(lake, Layer.SILVER, pd.concat([frame, frame.iloc[:4]], ignore_index=True))
    # Every slice is "large" here, so the run goes to the session the fixture started.
    app = build_app(settings_for(lake, engine="auto", spark_min_rows=1))
    with TestClient(app) as client:
        response = jobs.final(client, "/runs", {"layer": "silver", **window_params(hour)}, AUTH)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["engine"] == "spark"
    assert result["row_count"] == len(frame) + 4
    assert result["verdict"] == "fail"
    assert result["failed_expectations"] == ["unique:sensor_id,timestamp"]
    assert "fresh:timestamp" not in result["failed_expectations"]
