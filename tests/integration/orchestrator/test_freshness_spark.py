"""`orchestrator check-freshness` on a Bronze that real Spark wrote through its streaming file
sink (``_spark_metadata``), beside files it never committed and a partition from the future."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from orchestrator.cli import app
from pyspark.sql import SparkSession
from pyspark.sql import functions as sf
from typer.testing import CliRunner

from iotpipe.lake import Lake

from .conftest import Receiver

pytestmark = pytest.mark.integration


def spark_bronze(spark: SparkSession, lake: Path, *batches: list[datetime]) -> Path:
    """Bronze as the stream writes it: a streaming query (one micro-batch per list of event
    times) through Spark's Parquet file sink, partitioned by event_date / event_hour."""
    source = lake / "_source"
    source.mkdir(parents=True)
    for i, times in enumerate(batches):
        rows = [{"sensor_id": f"s-{n}", "timestamp": t.isoformat()} for n, t in enumerate(times)]
        (source / f"{i:03d}.json").write_text("\n".join(json.dumps(r) for r in rows))
    bronze = Path(Lake(str(lake)).bronze)
    events = (
        spark.readStream.schema("sensor_id string, timestamp timestamp")
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .withColumn("event_date", sf.to_date("timestamp"))
        .withColumn("event_hour", sf.hour("timestamp"))
    )
    query = (
        events.writeStream.format("parquet")
        .partitionBy("event_date", "event_hour")
        .option("checkpointLocation", str(lake / "_checkpoints" / "freshness-test"))
        .trigger(availableNow=True)
        .start(str(bronze))
    )
    query.awaitTermination()
    assert query.exception() is None
    assert len([p for p in (bronze / "_spark_metadata").iterdir() if p.name.isdigit()]) == len(
        batches
    )
    return bronze


def age(path: Path, minutes: float) -> None:
    stamp = time.time() - minutes * 60
    os.utime(path, (stamp, stamp))


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))


def freshness(env: dict[str, str]) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["check-freshness", "-o", "json"], env=env)
    return result.exit_code, json.loads(result.stdout)


def test_an_orphan_file_newer_than_the_committed_ones_does_not_count(
    spark: SparkSession, receiver: Receiver, local_env: dict[str, str]
) -> None:
    """A failed attempt leaves its Parquet files in the partition (the sink lists them in
    ``_spark_metadata`` only when the batch commits): the newest such file, and one alone in a
    newer hour, must not make a stalled stream look fresh."""
    now = datetime.now(UTC)
    lake = Path(local_env["LAKE_ROOT"])
    bronze = spark_bronze(spark, lake, [now - timedelta(hours=1)], [now - timedelta(minutes=1)])
    committed = data_files(bronze)
    assert len(committed) == 2
    for path in committed:
        age(path, 45)  # the stream stalled 45 minutes ago
    code, report = freshness(local_env)
    assert (code, report["ok"]) == (1, False)
    assert 44.5 < report["age_minutes"] < 46.5

    newest = max(committed)
    orphan = newest.with_name("part-00000-" + "0" * 8 + "-died.c000.snappy.parquet")
    shutil.copy(newest, orphan)  # the same folder, written a minute ago
    age(orphan, 1)
    later = now + timedelta(minutes=30)
    lonely = bronze / f"event_date={later:%Y-%m-%d}" / f"event_hour={later.hour}"
    lonely.mkdir(parents=True, exist_ok=True)
    shutil.copy(newest, lonely / "part-00001-being-written.c000.snappy.parquet")
    code, report = freshness(local_env)
    assert (code, report["ok"]) == (1, False), report
    assert 44.5 < report["age_minutes"] < 46.5  # still the committed file's time
    [text, _] = receiver.texts()
    assert "STALE" in text


def test_a_committed_partition_from_the_future_does_not_pin_freshness(
    spark: SparkSession, local_env: dict[str, str]
) -> None:
    """An event dated years ahead that reached Bronze (before the contract's bound, or with
    the bound off) makes a partition newer than every real one; written long ago, it would
    make a fresh Bronze look stale for ever, and rewritten it would hide a stalled stream."""
    now = datetime.now(UTC)
    lake = Path(local_env["LAKE_ROOT"])
    future = datetime(2099, 1, 1, tzinfo=UTC)
    bronze = spark_bronze(spark, lake, [future], [now - timedelta(minutes=2)])
    [pinned] = data_files(bronze / "event_date=2099-01-01")
    age(pinned, 3 * 24 * 60)
    code, report = freshness(local_env)
    assert (code, report["ok"]) == (0, True), report
    assert report["age_minutes"] < 15

    # and a fresh file in the future partition does not hide a stalled stream
    for path in data_files(bronze):
        age(path, 45)
    age(pinned, 0)
    code, report = freshness(local_env)
    assert (code, report["ok"]) == (1, False), report
    assert 44.5 < report["age_minutes"] < 46.5
