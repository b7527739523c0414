"""The gate's domain: run a layer's suite on a window of the lake, keep the result,
answer verdicts."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from iotpipe.gate_client import GateVerdict, Layer, Verdict
from iotpipe.lake import Lake
from iotpipe.windows import Window
from quality_gate import metrics
from quality_gate.layers import LAYERS
from quality_gate.models import Engine, RunDetail
from quality_gate.runner import outcomes, validate
from quality_gate.settings import GateSettings
from quality_gate.slices import Slice
from quality_gate.store import RunStore
from quality_gate.suites import SuiteOptions, build_suite

log = logging.getLogger(__name__)


def new_run_id(layer: Layer, at: datetime) -> str:
    """Sortable by time, readable, unique: ``20261126T101500123456Z-silver-3fa2c1``."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{layer.value}-{secrets.token_hex(3)}"


class QualityGate:
    def __init__(self, settings: GateSettings, lake: Lake | None = None) -> None:
        self.settings = settings
        self.lake = lake or Lake.from_settings(settings.lake)
        self.store = RunStore(self.lake.quality)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        engines = ["pandas", "spark"] if self.settings.engine == "auto" else [self.settings.engine]
        metrics.initialise(engines)
        known = await asyncio.to_thread(self.store.load)
        for layer in Layer:
            latest = self.store.runs(layer, limit=1)
            if latest:
                metrics.PASS_RATE.labels(layer.value).set(latest[0].pass_rate)
                metrics.LAST_RUN.labels(layer.value).set(latest[0].finished_at.timestamp())
        log.info("read %d persisted run(s) from %s", known, self.store.location)

    def engine_for(self, rows: int) -> Engine:
        if self.settings.engine != "auto":
            return self.settings.engine
        return "spark" if rows >= self.settings.spark_min_rows else "pandas"

    async def run(self, layer: Layer, window: Window) -> RunDetail:
        """Validate one layer's window; runs go one at a time (they share the CPU and JVM)."""
        async with self._lock:
            return await asyncio.to_thread(self._run, layer, window)

    def _frame(self, piece: Slice, engine: Engine) -> tuple[Any, int]:
        if engine == "spark":
            from iotpipe.spark import session

            frame = piece.to_spark(session("quality-gate")).cache()
            return frame, int(frame.count())
        pandas_frame = piece.to_pandas()
        return pandas_frame, len(pandas_frame)

    def _run(self, layer: Layer, window: Window) -> RunDetail:
        started = datetime.now(UTC)
        clock = time.perf_counter()
        spec = LAYERS[layer]
        piece = Slice.locate(self.lake, spec, window)
        engine = self.engine_for(piece.file_rows)
        frame, rows = self._frame(piece, engine)
        options = SuiteOptions(
            bounds_mostly=self.settings.bounds_mostly,
            freshness_max_lag=self.settings.freshness_max_lag,
            now=started,
            naive_datetimes=engine == "spark",
        )
        try:
            result = validate(frame, build_suite(spec, window, options), engine)
        finally:
            if engine == "spark":
                frame.unpersist()
        lines = outcomes(result)
        passed = sum(line.success for line in lines)
        pass_rate = passed / len(lines) if lines else 0.0
        failed = [line.name for line in lines if not line.success]
        finished = datetime.now(UTC)
        run_id = new_run_id(layer, started)
        verdict = Verdict.PASS if pass_rate >= self.settings.pass_threshold else Verdict.FAIL
        run = RunDetail(
            run_id=run_id,
            layer=layer,
            window=str(window),
            verdict=verdict,
            pass_rate=pass_rate,
            threshold=self.settings.pass_threshold,
            evaluated_expectations=len(lines),
            successful_expectations=passed,
            failed_expectations=failed,
            row_count=rows,
            engine=engine,
            started_at=started,
            finished_at=finished,
            result_location=self.store.result_location(layer, run_id),
            data_fingerprints=piece.fingerprints,
            expectations=lines,
            result=result,
        )
        self.store.save(run)
        self._record(run, time.perf_counter() - clock)
        return run

    @staticmethod
    def _record(run: RunDetail, seconds: float) -> None:
        layer = run.layer.value
        metrics.CHECKS.labels(layer, run.verdict.value).inc()
        for name in run.failed_expectations:
            metrics.EXPECTATIONS_FAILED.labels(layer, name).inc()
        metrics.PASS_RATE.labels(layer).set(run.pass_rate)
        metrics.LAST_RUN.labels(layer).set(run.finished_at.timestamp())
        metrics.RUN_SECONDS.labels(layer, run.engine).observe(seconds)
        log.info(
            "run %s: %s %s -> %s (%d/%d expectations, %d rows, %.1fs)%s",
            run.run_id,
            layer,
            run.window,
            run.verdict.value,
            run.successful_expectations,
            run.evaluated_expectations,
            run.row_count,
            seconds,
            f"; failed: {', '.join(run.failed_expectations)}" if run.failed_expectations else "",
        )

    def verdict(self, layer: Layer, window: Window) -> GateVerdict:
        run = self.store.deciding_run(layer, window)
        if run is None:
            return GateVerdict(layer=layer, window=str(window), verdict=Verdict.UNKNOWN)
        return GateVerdict(
            layer=layer,
            window=str(window),
            verdict=run.verdict,
            run_id=run.run_id,
            pass_rate=run.pass_rate,
            failed_expectations=run.failed_expectations,
            checked_at=run.finished_at,
            data_fingerprints=run.data_fingerprints,
        )
