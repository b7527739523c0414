"""What the two medallion batch jobs share: their settings, the time range they run on,
lake I/O (tolerant reads, dynamic partition overwrite, finding partitions that late
data made stale) and their command line.

A job is a function ``(spark, window, settings, lake, steps) -> Report``;
:func:`run_cli` turns it into ``main(argv)`` with ``--help``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any

import typer
from prometheus_client import CollectorRegistry, push_to_gateway
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from iotpipe.contract import SENSOR_TYPES, SensorType
from iotpipe.lake import Lake
from iotpipe.logging import configure_logging
from iotpipe.output import Output, OutputOption, print_json
from iotpipe.windows import Window

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

GOLD_WINDOW_SECONDS = 300
"""The Gold fact grain: 5-minute tumbling windows (UTC)."""


def _package_version() -> str:
    try:
        return f"spark-jobs {version('spark-jobs')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "spark-jobs dev"


class MedallionSettings(BaseSettings):
    """Configuration of the medallion jobs (env ``MEDALLION_*``)."""

    model_config = SettingsConfigDict(env_prefix="MEDALLION_", extra="ignore")

    pipeline_version: str = Field(
        default_factory=_package_version,
        description="Written to every Silver/Gold row (set it to the image tag or git SHA).",
    )
    default_rate_hz: PositiveFloat = Field(
        default=1.0, description="Expected readings per second of a sensor (health_pct)."
    )
    expected_rate_hz: dict[SensorType, PositiveFloat] = Field(
        default_factory=dict,
        description="Per sensor type overrides, JSON: MEDALLION_EXPECTED_RATE_HZ='{\"vibration\": 10}'.",
    )
    zscore_threshold: PositiveFloat = 3.0
    zscore_window: PositiveInt = Field(
        default=100, description="How many previous readings of the sensor the z-score uses."
    )
    zscore_min_history: int = Field(
        default=30,
        ge=2,
        description="Fewer previous readings than this: the reading is not z-score flagged.",
    )
    history_hours: PositiveInt | None = Field(
        default=None,
        description="Bronze hours read before the first recomputed hour as z-score history; "
        "default: enough for zscore_window readings at the slowest configured rate.",
    )
    late_lookback_hours: NonNegativeInt = Field(
        default=48,
        description="How far back a run looks for partitions that late data made stale (0: off).",
    )
    late_margin_seconds: NonNegativeInt = Field(
        default=300,
        description="Data ingested up to this long before a partition was processed still "
        "counts as possibly missed (covers in-flight streaming micro-batches).",
    )
    percentile_accuracy: PositiveInt = Field(
        default=10_000,
        description="percentile_approx accuracy: the rank error is at most n / accuracy.",
    )
    anomaly_default_history: PositiveInt = Field(
        default=30,
        ge=2,
        description="Previous readings of the sensor that anomaly_score uses (docs/anomaly.md).",
    )
    anomaly_history: dict[SensorType, Annotated[int, Field(ge=2)]] = Field(
        default_factory=dict,
        description="Per sensor type overrides, JSON: MEDALLION_ANOMALY_HISTORY='{\"vibration\": 60}'.",
    )
    anomaly_default_threshold: float = Field(
        default=0.999999,
        gt=0,
        lt=1,
        description="anomaly_score at or above this raises an alert (0.999999: |z| >= 4.89).",
    )
    anomaly_threshold: dict[SensorType, Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=dict, description="Per sensor type overrides (JSON, like the history)."
    )
    anomaly_min_history: int = Field(
        default=20, ge=2, description="Fewer previous readings than this: anomaly_score is null."
    )
    anomaly_cooldown: PositiveInt = Field(
        default=10,
        description="A new alert needs this many previous readings of the sensor below the "
        "threshold: one alert per incident.",
    )
    detector_max_rows: PositiveInt = Field(
        default=200_000, description="Training rows per sensor type (a deterministic sample)."
    )
    detector_trees: PositiveInt = Field(default=100, description="Isolation forest size.")
    detector_max_samples: PositiveInt = Field(
        default=2048, description="Readings each isolation tree is grown on."
    )
    detector_threshold: float = Field(
        default=0.78,
        gt=0,
        lt=1,
        description="ml_anomaly_score at or above this counts as the detector's alert; "
        "stored with the model.",
    )
    detector_enabled: bool = Field(
        default=True, description="Score Silver with the newest model of each sensor type."
    )
    pushgateway_url: str | None = Field(
        default=None,
        description="Prometheus Pushgateway for bronze_to_silver's alert counts and "
        "silver_to_gold's sensor health, "
        "e.g. http://pushgateway.monitoring:9091 (unset: not pushed).",
    )

    @model_validator(mode="after")
    def _history_fits(self) -> MedallionSettings:
        if self.zscore_min_history > self.zscore_window:
            raise ValueError("zscore_min_history cannot exceed zscore_window")
        if self.anomaly_min_history > min(self.anomaly_histories):
            raise ValueError("anomaly_min_history cannot exceed any anomaly history")
        return self

    @property
    def anomaly_histories(self) -> list[int]:
        return [self.anomaly_default_history, *self.anomaly_history.values()]

    def rate_hz(self, sensor_type: SensorType) -> float:
        return self.expected_rate_hz.get(sensor_type, self.default_rate_hz)

    @property
    def history(self) -> timedelta:
        """How much earlier Bronze a recomputed hour needs for its z-scores."""
        if self.history_hours is not None:
            return timedelta(hours=self.history_hours)
        slowest = min(self.rate_hz(sensor_type) for sensor_type in SensorType)
        readings = max(self.zscore_window, *self.anomaly_histories) + self.anomaly_cooldown
        return timedelta(hours=math.ceil(readings / slowest / 3600))


# ---------------------------------------------------------------- column expressions


def out_of_range(sensor_type: Column, value: Column) -> Column:
    """True outside the contract's physical bounds (and for a type the contract lacks)."""
    from pyspark.sql import functions as sf

    expr = None
    for kind, spec in SENSOR_TYPES.items():
        outside = ~value.between(spec.min_value, spec.max_value)
        expr = (sf if expr is None else expr).when(sensor_type == kind.value, outside)
    assert expr is not None
    return expr.otherwise(sf.lit(True))


def expected_count(
    settings: MedallionSettings, sensor_type: Column, start: Column, end: Column
) -> Column:
    """Readings a sensor should send in ``[start, end)``, the future part not counted."""
    from pyspark.sql import functions as sf

    rate = sf.lit(settings.default_rate_hz)
    for kind in SensorType:
        rate = sf.when(sensor_type == kind.value, sf.lit(settings.rate_hz(kind))).otherwise(rate)
    elapsed = sf.unix_seconds(sf.least(end, sf.current_timestamp())) - sf.unix_seconds(start)
    return sf.greatest(sf.round(rate * elapsed), sf.lit(1)).cast("long")


def health_pct(received: Column, expected: Column) -> Column:
    """Readings received ÷ readings expected x 100 (above 100: faster than configured)."""
    return received.cast("double") / expected * 100.0


def hours_filter(hours: Iterable[datetime]) -> Column:
    """Rows of the given ``(event_date, event_hour)`` partitions (prunes partitions)."""
    from pyspark.sql import functions as sf

    by_day: dict[date, set[int]] = {}
    for hour in hours:
        by_day.setdefault(hour.date(), set()).add(hour.hour)
    condition = sf.lit(False)
    for day, day_hours in sorted(by_day.items()):
        condition = condition | (
            (sf.col("event_date") == sf.lit(day)) & sf.col("event_hour").isin(sorted(day_hours))
        )
    return condition


def conform(frame: DataFrame, schema: StructType) -> DataFrame:
    """Exactly ``schema``'s columns, in its order and types (missing ones null)."""
    from pyspark.sql import functions as sf

    present = set(frame.columns)
    return frame.select(
        *[
            (sf.col(f.name) if f.name in present else sf.lit(None)).cast(f.dataType).alias(f.name)
            for f in schema.fields
        ]
    )


# ---------------------------------------------------------------- lake I/O


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` exists, on any file system Hadoop knows (local, s3a)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(hadoop_path))


def read_table(spark: SparkSession, path: str, schema: StructType) -> DataFrame:
    """A lake table read with ``schema``: columns the files lack come back null
    (older writers), extra ones are dropped; a table not written yet reads empty.

    The table's root is read (not partition folders) so that a streaming sink's
    ``_spark_metadata`` log decides which files are committed; callers filter on
    partition columns, which Spark prunes.
    """
    if not path_exists(spark, path):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(path)


def overwrite_partitions(frame: DataFrame, path: str, partitions: Sequence[str]) -> None:
    """Replace exactly the partitions ``frame`` has rows for; leave every other one alone."""
    (
        frame.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(*partitions)
        .parquet(path)
    )


def stale_partitions(
    source: DataFrame, target: DataFrame, keys: Sequence[str], margin_seconds: int
) -> list[tuple[Any, ...]]:
    """Processed partitions (values of ``keys``) whose source has rows they have not seen.

    ``source`` has ``keys`` and ``changed_at`` (when each row arrived), ``target``
    has ``keys`` and ``processing_timestamp``. A partition is stale when it was
    processed before (or less than ``margin_seconds`` after) its newest source row
    arrived. Partitions never processed are not stale but missing: that is a backfill.
    """
    from pyspark.sql import functions as sf

    arrived = source.groupBy(*keys).agg(sf.max("changed_at").alias("changed_at"))
    processed = target.groupBy(*keys).agg(sf.min("processing_timestamp").alias("processed_at"))
    cutoff = sf.col("processed_at") - sf.make_dt_interval(secs=sf.lit(margin_seconds))
    stale = (
        arrived.join(processed, list(keys))
        .where(sf.col("changed_at") > cutoff)
        .select(*keys)
        .orderBy(*keys)
    )
    return [tuple(row) for row in stale.collect()]


# ---------------------------------------------------------------- reports and CLI


@dataclass
class Report:
    """What a run did: the partitions it rewrote and its row accounting."""

    job: str
    window: Window
    partitions: list[str] = field(default_factory=list)
    late_partitions: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    """The row accounting."""
    anomalies: dict[str, int] = field(default_factory=dict)
    """Anomaly scoring's counts (alerts, rows the learned detector scored), shown and logged."""
    health_min_pct: dict[str, float] = field(default_factory=dict)
    """silver_to_gold: per location, the lowest sensor health of the newest hour."""

    def document(self) -> dict[str, Any]:
        """The report for ``--output json``."""
        return {
            "job": self.job,
            "window": str(self.window),
            "partitions": self.partitions,
            "late_partitions": self.late_partitions,
            "counts": self.counts,
            "anomalies": self.anomalies,
        }

    def table(self) -> Table:
        grid = Table(title=f"{self.job} {self.window}", show_header=False)
        grid.add_row("partitions rewritten", ", ".join(self.partitions) or "none (no input)")
        grid.add_row("of which for late data", ", ".join(self.late_partitions) or "none")
        for name, count in {**self.counts, **self.anomalies}.items():
            grid.add_row(name, f"{count:,}")
        for location, pct in sorted(self.health_min_pct.items()):
            grid.add_row(f"lowest sensor health, {location}", f"{pct:.1f} %")
        return grid


def push_metrics(gateway: str | None, job: str, registry: CollectorRegistry) -> None:
    """``push`` (PUT: replaces the job's whole group) ``registry`` to the Pushgateway, when
    one is set; a failed push is logged, never raised (the run's data is written)."""
    if not gateway:
        return
    try:
        push_to_gateway(gateway, job=job, registry=registry)
    except OSError as exc:
        log.error("could not push metrics to %s: %s", gateway, exc)


Step = Callable[[str], None]
Job = Callable[["SparkSession", Window, MedallionSettings, Lake, Step], Report]


@contextmanager
def steps(console: Console) -> Iterator[Step]:
    """A spinner per step of a job, each ticked off (with its time) when the next starts."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        current: list[Any] = []

        def step(description: str) -> None:
            if current:
                progress.update(current[-1], completed=1, total=1)
            current.append(progress.add_task(description, total=None))

        yield step
        if current:
            progress.update(current[-1], completed=1, total=1)


def previous_hour(now: datetime | None = None) -> Window:
    """The last complete UTC hour (what the hourly schedule processes by default)."""
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return Window(end - timedelta(hours=1), end)


def resolve_window(
    window: str | None, start: str | None, end: str | None, *, now: datetime | None = None
) -> Window:
    """``--window`` or ``--start``/``--end`` (ISO-8601 with Z), else the previous hour."""
    if window and (start or end):
        raise ValueError("give either --window or --start/--end, not both")
    if window:
        return Window.parse(window)
    if start or end:
        if not (start and end):
            raise ValueError("--start and --end go together")
        return Window.parse(f"{start}--{end}")
    return previous_hour(now)


def run_cli(argv: Sequence[str] | None, *, name: str, help: str, job: Job) -> int:
    """Parse the command line, run ``job`` on a SparkSession, print its report."""
    app = typer.Typer(add_completion=False, help=help, rich_markup_mode=None)

    @app.command(help=help)
    def command(
        window: Annotated[
            str | None,
            typer.Option(
                help="Time range: START--END (ISO-8601 with Z), a day YYYY-MM-DD or an hour "
                "YYYY-MM-DDTHH. Default: the previous complete UTC hour."
            ),
        ] = None,
        start: Annotated[
            str | None, typer.Option(help="Range start, e.g. 2026-11-26T10:00:00Z.")
        ] = None,
        end: Annotated[str | None, typer.Option(help="Range end (exclusive).")] = None,
        lake_root: Annotated[
            str | None, typer.Option(help="Lake root (default: env LAKE_ROOT).")
        ] = None,
        log_json: Annotated[bool, typer.Option(help="Log JSON lines.")] = False,
        output: OutputOption = Output.TABLE,
    ) -> None:
        from iotpipe.settings import LakeSettings, from_environment
        from iotpipe.spark import session

        try:
            time_range = resolve_window(window, start, end)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        configure_logging("INFO", json=log_json, service=name)
        settings = from_environment(MedallionSettings)
        lake = Lake.from_settings(LakeSettings(root=lake_root) if lake_root else None)
        console = Console(stderr=True)
        spark = session(f"iotpipe-{name}")
        with steps(console) as step:
            report = job(spark, time_range, settings, lake, step)
        if output is Output.JSON:
            print_json(report.document())
        else:
            console.print(report.table())
        log.info(
            "%s done",
            name,
            extra={
                "window": str(report.window),
                "partitions": report.partitions,
                "late_partitions": report.late_partitions,
                **report.counts,
                **report.anomalies,
            },
        )

    try:
        typer.main.get_command(app).main(
            args=list(argv) if argv is not None else None, prog_name=name, standalone_mode=True
        )
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return 0
