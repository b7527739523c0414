"""The Python worker daemon's lean import path (pure path logic over real folders)."""

from __future__ import annotations

from pathlib import Path

from iotpipe.spark_daemon import lean_path


def _package(root: Path, name: str) -> str:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    return str(root)


def test_jars_always_go_and_zips_go_when_spark_packages_are_installed(tmp_path: Path) -> None:
    site = _package(tmp_path / "site", "pyspark")
    _package(tmp_path / "site", "py4j")
    path = ["/opt/spark/python/lib/pyspark.zip", "/opt/spark/jars/spark-core.jar", site, "/app"]

    assert lean_path(path) == [site, "/app"]


def test_zips_stay_when_they_are_the_only_pyspark(tmp_path: Path) -> None:
    site = _package(tmp_path / "site", "py4j")  # py4j installed, pyspark only zipped
    path = ["/opt/spark/python/lib/pyspark.zip", "/opt/spark/jars/spark-core.jar", site]

    assert lean_path(path) == ["/opt/spark/python/lib/pyspark.zip", site]
