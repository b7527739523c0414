"""The pipeline's stages on one machine, each the real component.

- **stream**: ``bronze_stream`` as a supervised local process (:mod:`local_pipeline.stream`);
- **produce**: a bounded simulator run (its ``RunManager``, as ``sensor-simulator run`` uses),
  then a few already-produced readings sent again (an at-least-once upstream's duplicates);
- **drain**: wait until the stream has committed every offset to Bronze or the DLQ;
- **window**: the orchestrator's window chain, :meth:`Orchestrator.run_window`
  (bronze-to-silver, silver-to-gold, the Silver and Gold gates, the warehouse load),
  with the two Spark jobs run in this process instead of as SparkApplications;
- **account**: :func:`local_pipeline.accounting.account`.
"""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from orchestrator.pipeline import GATE_LAYERS, Orchestrator, StepFailed, WindowResult
from orchestrator.settings import OrchestratorSettings
from orchestrator.sparkapps import SparkApps
from sensor_simulator.config import EngineSettings, MalformedKind, RunConfig
from sensor_simulator.runs import RunManager, RunStatus
from spark_jobs.medallion import MedallionSettings, Report

from iotpipe import kafka
from iotpipe.contract import ContractViolation, parse_event
from iotpipe.gate_client import GateVerdict, gate_verdict
from iotpipe.lake import Lake
from iotpipe.settings import KafkaSettings
from iotpipe.windows import Window
from local_pipeline.accounting import (
    DLQ_TYPE_OF,
    Accounting,
    account,
    end_offsets,
    injections,
    read_topic,
)
from local_pipeline.services import Services
from local_pipeline.stream import StreamJob

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    """A bounded simulator run with every kind of trouble the pipeline must absorb."""

    events: int = 15_000
    rate: float = 250.0
    """Events/s over all sensors; each sensor reports at ``rate / sensors`` Hz."""
    sensors: int = 50
    anomaly_rate: float = 0.01
    malformed_rate: float = 0.02
    late_rate: float = 0.01
    late_max_minutes: float = 3.0
    dropout_fraction: float = 0.1
    dropout_seconds: float = 15.0
    dropout_interval_seconds: float = 30.0
    redeliver: int = 100
    """Already-produced valid readings sent once more (duplicates Silver must remove)."""
    seed: int | None = 7

    @property
    def sensor_rate_hz(self) -> float:
        return self.rate / self.sensors

    def run_config(self, topic: str) -> RunConfig:
        return RunConfig(
            rate=self.rate,
            max_events=self.events,
            sensors=self.sensors,
            anomaly_rate=self.anomaly_rate,
            malformed_rate=self.malformed_rate,
            late_rate=self.late_rate,
            late_max_minutes=self.late_max_minutes,
            dropout_fraction=self.dropout_fraction,
            dropout_seconds=self.dropout_seconds,
            dropout_interval_seconds=self.dropout_interval_seconds,
            seed=self.seed,
            topic=topic,
        )


class LocalOrchestrator(Orchestrator):
    """The orchestrator's window chain with the Spark jobs run in this process.

    Only :meth:`run_job` differs from the cluster: the gate and the load are the same
    HTTP calls to the same services. There are no SparkApplications, so the stream's
    ``ensure_stream`` is not for this class (the local stream is a :class:`StreamJob`).
    """

    def __init__(
        self,
        settings: OrchestratorSettings,
        spark: SparkSession,
        lake: Lake,
        medallion: MedallionSettings,
        progress: Progress,
    ) -> None:
        super().__init__(settings, cast(SparkApps, None), lambda _, step: progress(step))
        self.spark = spark
        self.lake = lake
        self.medallion = medallion
        self.reports: dict[str, Report] = {}

    def run_job(self, job: str, window: Window) -> str:
        self.progress(window, job)
        module = importlib.import_module(f"spark_jobs.{job.replace('-', '_')}")
        try:
            self.reports[job] = module.run(
                self.spark,
                window,
                self.medallion,
                self.lake,
                lambda step: self.progress(window, f"{job}: {step}"),
            )
        except Exception as exc:
            raise StepFailed(job, f"{type(exc).__name__}: {exc}") from exc
        return f"{job} (in process)"


@dataclass
class LocalPipeline:
    """One run's topics, lake, warehouse and stream job."""

    kafka: KafkaSettings
    """With this run's own ``events_topic`` and ``dlq_topic``."""
    lake: Lake
    warehouse_dsn: str
    workdir: Path
    spark: SparkSession
    rate_hz: float = 1.0
    """Readings per second each sensor is expected to send (Gold's health_pct)."""
    progress: Progress = field(default=lambda _: None)
    stream: StreamJob | None = None
    acknowledged: int = 0
    """Records the producers got acks for."""
    run: RunStatus | None = None
    reports: dict[str, Report] = field(default_factory=dict)
    result: WindowResult | None = None
    verdicts: dict[str, GateVerdict] = field(default_factory=dict)

    @property
    def truth_dir(self) -> Path:
        return self.workdir / "ground-truth"

    async def create_topics(self) -> None:
        await kafka.ensure_topics(self.kafka, kafka.pipeline_topics(self.kafka))

    def start_stream(
        self, *, trigger_seconds: float = 1.0, max_offsets_per_trigger: int = 20_000
    ) -> StreamJob:
        """Start the streaming job and wait until its queries have started."""
        self.stream = StreamJob(
            self.lake,
            self.kafka,
            self.workdir / "bronze-stream.log",
            trigger_seconds=trigger_seconds,
            max_offsets_per_trigger=max_offsets_per_trigger,
        )
        self.stream.start()
        self.stream.wait_started()
        return self.stream

    async def simulate(
        self, scenario: Scenario, on_progress: Callable[[int], None] | None = None
    ) -> RunStatus:
        """A bounded simulator run; returns its final status (counters)."""
        settings = EngineSettings(kafka=self.kafka, ground_truth_dir=self.truth_dir)
        run = await RunManager(settings).start_synthetic(
            scenario.run_config(self.kafka.events_topic)
        )
        while run.task is not None and not run.task.done():
            await asyncio.wait({run.task}, timeout=0.25)
            if on_progress is not None:
                on_progress(run.status().counters.delivered)
        self.run = run.status()
        self.acknowledged += self.run.counters.delivered
        if self.run.error:
            raise RuntimeError(f"the simulator run failed: {self.run.error}")
        return self.run

    async def redeliver(self, count: int) -> int:
        """Send ``count`` valid readings already on the topic once more; return how many."""
        if count <= 0:
            return 0
        copies = []
        for record in await read_topic(self.kafka, self.kafka.events_topic):
            try:
                parse_event(record.value)
            except ContractViolation:
                continue
            copies.append((record.key, record.value))
            if len(copies) == count:
                break
        producer = kafka.producer(self.kafka)
        await producer.start()
        try:
            sent = [await producer.send(self.kafka.events_topic, v, key=k) for k, v in copies]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        self.acknowledged += len(copies)
        return len(copies)

    def drain(self, timeout: float = 900.0) -> float:
        """Wait until the stream has committed every offset on the topic; return the wait."""
        assert self.stream is not None, "start_stream() first"
        ends = asyncio.run(end_offsets(self.kafka, self.kafka.events_topic))
        return self.stream.wait_caught_up(ends, timeout)

    def stop_stream(self) -> None:
        if self.stream is not None:
            self.stream.stop()

    def process(self, window: Window, services: Services) -> WindowResult:
        """bronze-to-silver, silver-to-gold, the gates and the load, as the orchestrator does."""
        settings = OrchestratorSettings(
            quality_gate_url=services.gate_url,
            quality_gate_token=services.gate_token,
            loader_url=services.loader_url,
            loader_token=services.loader_token,
            lake={"root": self.lake.root},
        )
        medallion = MedallionSettings(default_rate_hz=self.rate_hz)
        orchestrator = LocalOrchestrator(settings, self.spark, self.lake, medallion, self.progress)
        self.result = orchestrator.run_window(window)
        self.reports = orchestrator.reports
        for layer in GATE_LAYERS:
            self.verdicts[str(layer)] = asyncio.run(gate_verdict(services.gate_url, layer, window))
        return self.result

    def account(self, window: Window, *, all_acknowledged: bool = True) -> Accounting:
        """:func:`~local_pipeline.accounting.account`, plus what the producers know: every
        acknowledged record is on the topic (``all_acknowledged``: and nothing else, which
        holds unless a fault made a producer give up on records it had sent), and the DLQ
        holds exactly the malformed records the simulator injected, by type."""
        late = {str(entry["event_id"]) for entry in injections(self.truth_dir, "late")}
        result = account(
            self.spark, self.lake, self.kafka, self.warehouse_dsn, window, late_ids=late
        )
        if all_acknowledged:
            result.check("produced = acknowledged", self.acknowledged, result.produced)
        else:
            result.check(
                "produced >= acknowledged",
                f">= {self.acknowledged:,}",
                f"{result.produced:,}",
                ok=result.produced >= self.acknowledged,
            )
        if self.run is not None and self.run.kind == "synthetic":
            injected = Counter(
                {
                    str(DLQ_TYPE_OF[MalformedKind(k)]): n
                    for k, n in self.run.counters.malformed.items()
                }
            )
            result.check("DLQ by type = malformed injected", dict(injected), dict(result.dlq))
        return result
