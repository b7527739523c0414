"""Driver metrics of ``bronze_stream`` for Prometheus.

Two feeds:

- a StreamingQueryListener, from each micro-batch's ``StreamingQueryProgress``: Spark's
  own counters (rows/s, batch duration) and the Kafka source's offsets (lag: Spark
  commits no consumer-group offsets, so ``latestOffset - endOffset`` per partition *is*
  the lag);
- the ingest batch itself (:func:`batch_observation`, observed while its Bronze rows
  are written, and :func:`record_batch` once they are committed): rows committed, dead
  letters per error type, newest event time, and the commit-latency histogram. The
  commit time is known then, so every bucket is exact: ``le=L`` counts the rows whose
  event time is at most ``L`` seconds before the commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson
from prometheus_client import REGISTRY, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from iotpipe.contract import ErrorType

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession
    from pyspark.sql.streaming import StreamingQueryListener

log = logging.getLogger(__name__)

BRONZE_QUERY: Final = "bronze"
"""The ingest query: Kafka -> classification -> Bronze + the DLQ topic."""

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
    """Histogram of commit time - event time, fed batch by batch with exact bucket counts."""

    name = f"{_PREFIX}_commit_latency_seconds"

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self._counts = [0] * len(self.buckets)
        self._count = 0
        self._sum = 0.0
        self._lock = threading.Lock()

    def add(self, rows: int, latency_sum: float, within: Mapping[float, int]) -> None:
        """One batch: ``rows`` rows, their summed latency, and per bucket bound the rows
        whose latency is at most that bound."""
        with self._lock:
            for i, bound in enumerate(self.buckets):
                self._counts[i] += within.get(bound, 0)
            self._count += rows
            self._sum += latency_sum

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            buckets = [(str(b), c) for b, c in zip(self.buckets, self._counts, strict=True)]
            buckets.append(("+Inf", self._count))
            total = self._sum
        yield HistogramMetricFamily(
            self.name,
            "Commit time - event time of rows committed to Bronze.",
            buckets=buckets,
            sum_value=total,
        )


COMMIT_LATENCY = CommitLatency()
REGISTRY.register(COMMIT_LATENCY)
_newest = [0.0]  # newest event time seen (MAX_EVENT_TIME never goes back)


def batch_observation(valid: Column, *, errors: bool) -> list[Column]:
    """Aggregates over a micro-batch's rows, observed while its Bronze rows are written
    (``DataFrame.observe``): the rows that go to Bronze (``valid``), their event times
    (Unix µs, comma-separated: the commit time is only known after the write, so the
    latency buckets are counted then) and, with ``errors``, the rows per error type of a
    classified frame (:data:`spark_jobs.classify.CLASSIFIED`). See :func:`record_batch`."""
    from pyspark.sql import functions as sf

    event_us = sf.collect_list(sf.when(valid, sf.unix_micros(sf.col("timestamp"))))
    kinds = ErrorType if errors else ()
    return [
        sf.count_if(valid).alias("rows"),
        sf.array_join(event_us.cast("array<string>"), ",").alias("event_us"),
        *(sf.count_if(sf.col("error_type") == kind.value).alias(kind.value) for kind in kinds),
    ]


def record_batch(stats: Mapping[str, Any], committed_at: float) -> None:
    """Update the batch metrics from one :func:`batch_observation` (as a dict) once its
    Bronze rows were committed at ``committed_at`` (Unix seconds)."""
    for kind in ErrorType:
        DEAD_LETTERS.labels(kind.value).inc(int(stats.get(kind.value) or 0))
    committed = int(stats.get("rows") or 0)
    BRONZE_ROWS.inc(committed)
    if not committed:
        return
    event_us = np.array(stats["event_us"].split(","), dtype=np.int64)
    latency_us = int(committed_at * 1_000_000) - event_us
    newest = int(event_us.max()) / 1e6
    _newest[0] = max(newest, _newest[0])
    MAX_EVENT_TIME.set(_newest[0])
    FRESHNESS.set(committed_at - newest)
    COMMIT_LATENCY.add(
        committed,
        int(latency_us.sum()) / 1e6,
        {
            bound: int(np.count_nonzero(latency_us <= int(bound * 1_000_000)))
            for bound in LATENCY_BUCKETS
        },
    )


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
    """Update the query metrics from one ``StreamingQueryProgress`` (its JSON, as a dict)."""
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
