"""Gold as Spark writes it (GOLD_WINDOWS, partitioned by window_date) loads exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from spark_jobs.schemas import GOLD_WINDOWS
from warehouse_loader.app import build_app
from warehouse_loader.sample import sample_gold
from warehouse_loader.settings import LoaderSettings

from iotpipe.lake import WINDOW_PARTITIONS, Lake
from iotpipe.windows import window_params
from tests import jobs

from .conftest import AUTH, GOLD_START, WINDOW, facts, gold_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.integration


def test_gold_written_by_spark_loads_row_for_row(
    spark: SparkSession, settings: LoaderSettings, tmp_path
) -> None:
    gold = sample_gold(GOLD_START, windows=48, sensors=6, seed=11)
    lake = Lake(str(tmp_path / "spark-lake"))
    rows = [tuple(r.values()) for r in gold.to_pylist()]
    (
        spark.createDataFrame(rows, GOLD_WINDOWS)
        .repartition(2)
        .write.mode("overwrite")
        .partitionBy(*WINDOW_PARTITIONS)
        .parquet(lake.gold_windows)
    )
    settings = settings.model_copy(
        update={"lake": settings.lake.model_copy(update={"root": lake.root})}
    )

    with TestClient(build_app(settings)) as client:
        response = jobs.final(client, "/loads", window_params(WINDOW), AUTH)

    assert response.status_code == 201, response.text
    assert response.json()["rows_inserted"] == 24 * 6
    assert facts(settings.warehouse_dsn.get_secret_value()) == gold_rows(gold, WINDOW)
