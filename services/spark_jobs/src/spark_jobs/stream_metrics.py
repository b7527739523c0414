"""Driver metrics of ``bronze_stream`` for Prometheus, from a StreamingQueryListener.

Everything comes from each micro-batch's ``StreamingQueryProgress``: Spark's own
counters (rows/s, batch duration), the Kafka source's offsets (lag: Spark commits no
consumer-group offsets, so ``latestOffset - endOffset`` per partition *is* the lag) and
the job's observed metrics (``Dataset.observe``): dead letters per error type, newest
event time, and a grid of event ages from which the commit-latency histogram is built.

Commit latency (commit time - event time) of a row is its age at the batch's start
(``current_timestamp()`` inside the batch) plus the batch's duration (the file sink
commits at the end). Rows are counted on an age grid, so a histogram bucket ``le=L``
counts rows whose age was at most the largest grid point <= ``L - duration``: a lower
bound, never flattering, exact to the grid's resolution (0.25 s up to 10 s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from prometheus_client import REGISTRY, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from iotpipe.contract import ErrorType

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql.streaming import StreamingQueryListener

log = logging.getLogger(__name__)

BRONZE_OBSERVATION: Final = "bronze_batch"
DLQ_OBSERVATION: Final = "dlq_batch"
BRONZE_QUERY: Final = "bronze"
DLQ_QUERY: Final = "dlq"

AGE_GRID: Final = (
    *(i / 4 for i in range(1, 41)),  # 0.25 s steps to 10 s
    12.5, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Event ages (seconds at batch start) at which each batch counts its rows."""
LATENCY_BUCKETS: Final = (
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    30.0,
    60.0,
    120.0,
    600.0,
    3600.0,
)
"""Upper bounds (seconds) of the commit-latency histogram."""

_PREFIX = "bronze_stream"
INPUT_ROWS_PER_SECOND = Gauge(
    f"{_PREFIX}_input_rows_per_second", "Input rate of the last micro-batch.", ["query"]
)
PROCESSED_ROWS_PER_SECOND = Gauge(
    f"{_PREFIX}_processed_rows_per_second", "Processing rate of the last micro-batch.", ["query"]
)
BATCH_DURATION = Gauge(
    f"{_PREFIX}_batch_duration_seconds", "Wall time of the last micro-batch.", ["query"]
)
INPUT_ROWS = Counter(f"{_PREFIX}_input_rows", "Records read from Kafka.", ["query"])
BATCHES = Counter(f"{_PREFIX}_batches", "Micro-batches completed.", ["query"])
OFFSETS_BEHIND = Gauge(
    f"{_PREFIX}_offsets_behind_latest",
    "Consumer lag: records in the partition not yet read by the query.",
    ["query", "topic", "partition"],
)
BRONZE_ROWS = Counter(f"{_PREFIX}_bronze_rows", "Rows committed to Bronze.")
DEAD_LETTERS = Counter(
    f"{_PREFIX}_dead_letters", "Records dead-lettered, by error type.", ["error_type"]
)
MAX_EVENT_TIME = Gauge(
    f"{_PREFIX}_max_event_time_seconds", "Newest event time in Bronze (Unix seconds)."
)
FRESHNESS = Gauge(
    f"{_PREFIX}_event_freshness_seconds",
    "Commit time of the last non-empty batch minus its newest event time.",
)


class CommitLatency(Collector):
    """Histogram of commit time - event time, fed batch by batch (see module doc)."""

    name = f"{_PREFIX}_commit_latency_seconds"

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self._counts = [0] * len(self.buckets)
        self._count = 0
        self._sum = 0.0
        self._lock = threading.Lock()

    def add(
        self, rows: int, age_sum: float, age_counts: Mapping[float, int], duration: float
    ) -> None:
        """One batch: ``rows`` rows, their summed age, cumulative counts on the age grid."""
        grid = sorted(age_counts)
        with self._lock:
            for i, bound in enumerate(self.buckets):
                fitting = [age for age in grid if age <= bound - duration]
                self._counts[i] += age_counts[fitting[-1]] if fitting else 0
            self._count += rows
            self._sum += age_sum + rows * duration

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            buckets = [(str(b), c) for b, c in zip(self.buckets, self._counts, strict=True)]
            buckets.append(("+Inf", self._count))
            total = self._sum
        yield HistogramMetricFamily(
            self.name,
            "Commit time - event time of rows committed to Bronze (lower bound per bucket).",
            buckets=buckets,
            sum_value=total,
        )


COMMIT_LATENCY = CommitLatency()
REGISTRY.register(COMMIT_LATENCY)
_newest = [0.0]  # newest event time seen (MAX_EVENT_TIME never goes back)


def _age_column(bound: float) -> str:
    return f"age_le_{bound:g}".replace(".", "_")


def bronze_observations() -> list[Column]:
    """Aggregates observed on every Bronze micro-batch (see :func:`record`)."""
    from pyspark.sql import functions as sf

    age = (sf.unix_micros(sf.current_timestamp()) - sf.unix_micros(sf.col("timestamp"))) / 1e6
    return [
        sf.count(sf.lit(1)).alias("rows"),
        sf.max(sf.unix_micros(sf.col("timestamp"))).alias("max_event_us"),
        sf.sum(age).alias("age_sum"),
        *(sf.count_if(age <= bound).alias(_age_column(bound)) for bound in AGE_GRID),
    ]


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _lag(source: Mapping[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(topic, partition, latest - end) for a Kafka source's progress."""

    def offsets(text: Any) -> dict[str, dict[str, int]]:
        if not text:
            return {}
        return orjson.loads(text) if isinstance(text, str) else dict(text)

    end, latest = offsets(source.get("endOffset")), offsets(source.get("latestOffset"))
    for topic, partitions in latest.items():
        for partition, newest in partitions.items():
            yield topic, partition, max(0, int(newest) - int(end.get(topic, {}).get(partition, 0)))


def record(progress: Mapping[str, Any]) -> None:
    """Update the metrics from one ``StreamingQueryProgress`` (its JSON, as a dict)."""
    query = progress.get("name") or str(progress.get("id"))
    rows = int(progress.get("numInputRows") or 0)
    duration = float(progress.get("batchDuration") or 0) / 1000
    INPUT_ROWS.labels(query).inc(rows)
    BATCHES.labels(query).inc()
    BATCH_DURATION.labels(query).set(duration)
    INPUT_ROWS_PER_SECOND.labels(query).set(float(progress.get("inputRowsPerSecond") or 0))
    PROCESSED_ROWS_PER_SECOND.labels(query).set(float(progress.get("processedRowsPerSecond") or 0))
    for source in progress.get("sources") or []:
        for topic, partition, behind in _lag(source):
            OFFSETS_BEHIND.labels(query, topic, partition).set(behind)
    observed = progress.get("observedMetrics") or {}
    if query == DLQ_QUERY and DLQ_OBSERVATION in observed:
        for kind in ErrorType:
            DEAD_LETTERS.labels(kind.value).inc(int(observed[DLQ_OBSERVATION].get(kind.value) or 0))
    if query == BRONZE_QUERY and BRONZE_OBSERVATION in observed:
        batch = observed[BRONZE_OBSERVATION]
        committed = int(batch.get("rows") or 0)
        BRONZE_ROWS.inc(committed)
        if committed:
            newest = int(batch["max_event_us"]) / 1e6
            commit_time = _seconds(progress["timestamp"]) + duration
            _newest[0] = max(newest, _newest[0])
            MAX_EVENT_TIME.set(_newest[0])
            FRESHNESS.set(commit_time - newest)
            COMMIT_LATENCY.add(
                committed,
                float(batch.get("age_sum") or 0.0),
                {bound: int(batch.get(_age_column(bound)) or 0) for bound in AGE_GRID},
                duration,
            )


def listener() -> StreamingQueryListener:
    """A listener that feeds :func:`record` (it must never raise into Spark)."""
    from pyspark.sql.streaming import StreamingQueryListener

    class BronzeMetricsListener(StreamingQueryListener):
        def onQueryStarted(self, event: Any) -> None:  # noqa: N802 (Spark API)
            log.info("query %s started (run %s)", event.name, event.runId)

        def onQueryProgress(self, event: Any) -> None:  # noqa: N802 (Spark API)
            try:
                record(orjson.loads(event.progress.json))
            except Exception:
                log.exception("could not record streaming progress")

        def onQueryIdle(self, event: Any) -> None:  # noqa: N802 (Spark API)
            pass

        def onQueryTerminated(self, event: Any) -> None:  # noqa: N802 (Spark API)
            log.info(
                "query %s terminated%s", event.id, f": {event.exception}" if event.exception else ""
            )

    return BronzeMetricsListener()


def install(spark: SparkSession, port: int) -> StreamingQueryListener:
    """Register the listener on ``spark`` and serve /metrics on ``port`` (0: no server)."""
    if port:
        start_http_server(port)
        log.info("Prometheus metrics on :%d/metrics", port)
    handle = listener()
    spark.streams.addListener(handle)
    return handle
