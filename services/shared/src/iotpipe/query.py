"""Ad-hoc SQL over the lake with DuckDB (``iotpipe query``; the ``iotpipe[query]`` extra).

Each lake table is a view over its Parquet files, read through Arrow's filesystems, so a
local lake and ``s3a://`` (``LAKE_ROOT``, AWS credentials from the usual environment) work
alike: partition columns come from the hive-style folder names (``event_date=...``), a
streaming sink's ``_spark_metadata`` log decides which files are committed (as Spark's own
readers do), and files written by older jobs with fewer columns read those columns as null.
Only the views a query names are opened.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from iotpipe.lake import DLQ_PARTITIONS, EVENT_PARTITIONS, WINDOW_PARTITIONS, Lake

if TYPE_CHECKING:  # pyarrow and duckdb are imported when a query runs (the CLI needs neither)
    import duckdb
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

_EVENT = tuple(zip(EVENT_PARTITIONS, ("date32", "int32"), strict=True))
_WINDOW = ((WINDOW_PARTITIONS[0], "date32"),)
_DLQ = ((DLQ_PARTITIONS[0], "date32"),)


@dataclass(frozen=True)
class View:
    name: str
    location: Callable[[Lake], str]
    partitions: tuple[tuple[str, str], ...]
    """Partition columns (the folder names' keys) and their Arrow types."""
    description: str


VIEWS: tuple[View, ...] = (
    View("bronze", lambda lake: lake.bronze, _EVENT, "raw valid readings + Kafka metadata"),
    View("silver", lambda lake: lake.silver, _EVENT, "clean, deduplicated, anomaly flags"),
    View("gold", lambda lake: lake.gold_windows, _WINDOW, "per sensor per 5-minute window"),
    View(
        "gold_location_hourly",
        lambda lake: lake.gold_location_hourly,
        _WINDOW,
        "per location and sensor type per hour",
    ),
    View("gold_daily", lambda lake: lake.gold_daily, _WINDOW, "per sensor type per day"),
    View("dlq", lambda lake: lake.dlq, _DLQ, "dead letters copied to the lake (optional)"),
)
"""The views ``iotpipe query`` offers, by name."""

EXAMPLES: tuple[tuple[str, str], ...] = (
    ("rows per layer", "SELECT count(*) FROM silver"),
    (
        "Bronze per hour",
        "SELECT event_date, event_hour, count(*) AS n FROM bronze GROUP BY ALL ORDER BY ALL",
    ),
    (
        "least healthy sensors",
        "SELECT sensor_id, avg(health_pct) AS health FROM gold GROUP BY 1 ORDER BY 2 LIMIT 5",
    ),
    (
        "anomalies per type",
        "SELECT sensor_type, count(*) FILTER (is_anomaly) AS anomalies FROM silver GROUP BY 1",
    ),
    ("dead letters by type", "SELECT error_type, count(*) FROM dlq GROUP BY 1"),
)


class QueryError(Exception):
    """The query could not run (bad SQL, a table it names is not in the lake, ...)."""


def data_files(fs: pafs.FileSystem, root: str) -> list[str]:
    """The committed Parquet files of a table: none under a ``_`` or ``.`` folder or name
    (logs, markers, a writer's temporary files) and, where a streaming sink writes, only
    what its log lists."""
    import pyarrow.fs as pafs

    from iotpipe.lakefs import committed_files

    if fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    committed = committed_files(fs, root)
    files = []
    for entry in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        relative = entry.path.removeprefix(root + "/").split("/")
        if entry.type != pafs.FileType.File or any(p.startswith(("_", ".")) for p in relative):
            continue
        if committed is None or entry.base_name in committed:
            files.append(entry.path)
    return sorted(files)


def dataset(lake: Lake, view: View) -> ds.Dataset | None:
    """The view's table as an Arrow dataset (None when the lake has no files for it)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from iotpipe.lakefs import filesystem

    fs, root = filesystem(view.location(lake))
    files = data_files(fs, root)
    if not files:
        return None
    partitions = pa.schema([(name, getattr(pa, kind)()) for name, kind in view.partitions])
    factory = ds.FileSystemDatasetFactory(
        fs,
        files,
        # Spark may write timestamps as INT96; read them at the precision Spark has.
        ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(coerce_int96_timestamp_unit="us")),
        ds.FileSystemFactoryOptions(
            partition_base_dir=root,
            partitioning=ds.partitioning(partitions, flavor="hive"),
        ),
    )
    # every file's schema, so that columns added later (nullable) are seen in old files too
    return factory.finish(factory.inspect(promote_options="permissive", fragments=None))


def named_views(sql: str) -> list[View]:
    """The views ``sql`` mentions (a word match: opening one too many costs a listing)."""
    words = {word.lower() for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}
    return [view for view in VIEWS if view.name in words]


@dataclass
class Result:
    columns: list[str]
    rows: Iterator[tuple[Any, ...]]
    missing: list[str]
    """Views the query names that the lake has no data for."""


def connect() -> duckdb.DuckDBPyConnection:
    try:
        import duckdb
    except ImportError:
        raise QueryError(
            "DuckDB is not installed: install the query extra (pip install 'iotpipe[query]')"
        ) from None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def run(lake: Lake, sql: str, *, batch: int = 10_000) -> Result:
    """Run ``sql`` with the lake's views; rows are fetched ``batch`` at a time."""
    con = connect()  # first: it says what to install when DuckDB is missing
    import duckdb

    missing = []
    for view in named_views(sql):
        try:
            found = dataset(lake, view)
        except (OSError, ValueError) as exc:  # Arrow's IO errors and ArrowInvalid
            raise QueryError(f"cannot read {view.name} at {view.location(lake)}: {exc}") from None
        if found is None:
            missing.append(view.name)
            continue
        con.register(view.name, found)
    try:
        cursor = con.execute(sql)
    except duckdb.Error as exc:
        if missing:
            absent = f"the lake at {lake.root} has no {', '.join(missing)} data"
            raise QueryError(f"{absent}: {exc}") from None
        raise QueryError(str(exc)) from None
    columns = [column[0] for column in cursor.description or []]

    def rows() -> Iterator[tuple[Any, ...]]:
        try:
            while chunk := cursor.fetchmany(batch):
                yield from chunk
        except duckdb.Error as exc:  # a failure while the rows stream in
            raise QueryError(str(exc)) from None
        finally:
            con.close()

    return Result(columns, rows(), missing)


def plain(value: Any) -> Any:
    """A value as JSON and CSV show it: ISO-8601 times, text for what JSON lacks."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def help_text(views: Sequence[View] = VIEWS) -> str:
    """What ``iotpipe query --help`` says about the views and the examples (one line each)."""
    lines = [f"  {view.name}: {view.description}" for view in views]
    examples = [f'  iotpipe query "{sql}"   ({what})' for what, sql in EXAMPLES]
    return "\n".join(["Views:", *lines]) + "\n\n" + "\n".join(["Examples:", *examples])
