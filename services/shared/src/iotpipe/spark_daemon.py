"""PySpark's Python worker daemon, started with a lean import path.

Spark puts its jar (``spark-core``, ~5,000 entries) and the zipped ``pyspark``/``py4j``
on every Python worker's ``PYTHONPATH``, and the worker calls
``importlib.invalidate_caches()`` at the start of *every task*, which on Python 3.11
makes each zip importer re-read its whole directory: measured ~0.3 s per task on two
cores, most of the cost of a small micro-batch with an Arrow UDF. The jar is never
needed by Python, and the zips are not when ``pyspark`` and ``py4j`` are installed as
packages (pip, uv, the images): this module drops them from ``sys.path`` before the
daemon (and the workers it forks) import anything, then runs PySpark's own daemon.

Used through ``spark.python.daemon.module=iotpipe.spark_daemon`` (see
:data:`iotpipe.spark.LOCAL_DEFAULTS` and the chart's SparkApplications). The worker
module to fork (``sys.argv[1]``, e.g. ``pyspark.worker``) is passed on unchanged.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence

_SPARK_PACKAGES = ("pyspark", "py4j")


def lean_path(path: Sequence[str]) -> list[str]:
    """``path`` without jars, and without zips when every package Spark zips is
    importable from the remaining (plain directory) entries."""
    kept = [entry for entry in path if not entry.endswith(".jar")]
    plain = [entry for entry in kept if not entry.endswith(".zip")]
    finder = importlib.machinery.PathFinder
    if all(finder.find_spec(name, plain) is not None for name in _SPARK_PACKAGES):
        return plain
    return kept


def main() -> None:
    lean = lean_path(sys.path)
    for entry in set(sys.path) - set(lean):
        # finding this module created importers for them: invalidate_caches visits those
        sys.path_importer_cache.pop(entry, None)
    sys.path[:] = lean
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
