"""The runs: the daily run, a day-by-day backfill, the reconcile of changed windows.

One window goes through the same steps every time::

    bronze-to-silver  ->  silver-to-gold  ->  quality gate (Silver, Gold)  ->  warehouse load

Each Spark step is a SparkApplication made from the chart's ScheduledSparkApplication of
that job (its ``.spec.template``: image, resources, lake and Kafka settings all come from
the chart, in one place) with the window as its argument, named ``<job>-<window>``. A rerun
of a window reuses a COMPLETED application, waits for one still in flight and replaces a
failed one, so retrying a run never repeats finished Spark work.

The reconcile (:meth:`Orchestrator.reconcile`) needs no Spark: it asks the loader which
loaded windows' Gold changed since their load (late data recomputed it), and takes each of
those through the gate and the load again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from iotpipe.gate_client import GateError, Layer, run_gate
from iotpipe.jobs import JobError, JobLost, submit
from iotpipe.windows import Window, window_of, window_params
from orchestrator.settings import OrchestratorSettings
from orchestrator.sparkapps import (
    COMPLETED,
    FAILED_STATES,
    RUNNING,
    SparkAppError,
    SparkApps,
    respec,
    state_of,
)

log = logging.getLogger(__name__)

JOBS = ("bronze-to-silver", "silver-to-gold")
"""The medallion's batch steps, in order: the chart's ScheduledSparkApplication suffixes."""
GATE_LAYERS = (Layer.SILVER, Layer.GOLD)
STEPS = (*JOBS, "quality-gate", "warehouse-load")
"""Every step of a window, as the daily run's deadlines and metrics name them."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "iotpipe-orchestrator"}

Progress = Callable[[Window, str], None]
"""Called with the window and a short description of the step starting."""


class StepFailed(RuntimeError):
    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass
class WindowResult:
    window: Window
    ok: bool
    applications: list[str] = field(default_factory=list)
    load: dict[str, Any] | None = None
    error: StepFailed | None = None


def app_name(release: str, job: str, window: Window) -> str:
    """``<release>-<job>-<yyyymmdd>`` for a whole UTC day, else ``...-<yyyymmddthhmm>``."""
    start = window.start
    whole_day = window == Window.day(start.date())
    suffix = start.strftime("%Y%m%d" if whole_day else "%Y%m%dt%H%M")
    return f"{release}-{job}-{suffix}"


def _retry_loader(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError | JobLost):  # JobLost: the loader restarted
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 503


@dataclass
class ReconcileResult:
    """One reconcile: the loaded windows compared, and what became of the changed ones."""

    checked: list[str] = field(default_factory=list)
    reloaded: list[WindowResult] = field(default_factory=list)
    refused: list[WindowResult] = field(default_factory=list)
    """Changed windows not reloaded: the gate failed them or the loader refused or failed
    (the warehouse keeps their previous rows)."""

    @property
    def ok(self) -> bool:
        return not self.refused

    def counts(self) -> dict[str, int]:
        return {
            "checked": len(self.checked),
            "changed": len(self.reloaded) + len(self.refused),
            "reloaded": len(self.reloaded),
            "refused": len(self.refused),
        }


class Orchestrator:
    def __init__(
        self,
        settings: OrchestratorSettings,
        apps: SparkApps | None,
        progress: Progress | None = None,
        on_step_done: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._apps = apps
        self.progress = progress or (lambda window, step: None)
        self.on_step_done = on_step_done or (lambda step: None)
        """Called with each step of :data:`STEPS` that finished successfully."""

    @property
    def apps(self) -> SparkApps:
        if self._apps is None:
            raise RuntimeError("this run was started without the Kubernetes API")
        return self._apps

    # -- the streaming job -------------------------------------------------------------
    @property
    def stream_name(self) -> str:
        return f"{self.settings.release}-bronze-stream"

    def ensure_stream(self) -> bool:
        """Make sure the streaming SparkApplication is RUNNING: recreate it (same spec,
        labels and annotations, so Helm still owns it) when it FAILED, then wait for
        RUNNING. Returns whether it had to be recreated."""
        name = self.stream_name
        app = self.apps.get(name)
        if app is None:
            raise StepFailed(
                "bronze-stream",
                f"SparkApplication {self.apps.namespace}/{name} does not exist "
                "(`helm upgrade` the release to create it)",
            )
        recreated = False
        if state_of(app) in FAILED_STATES:
            log.warning("%s is %s: recreating it", name, state_of(app))
            meta = app["metadata"]
            self.apps.delete(name)
            self.apps.create(name, respec(app), meta.get("labels"), meta.get("annotations"))
            recreated = True
        try:
            self.apps.wait_for(name, {RUNNING}, self.settings.stream_timeout_seconds)
        except SparkAppError as exc:
            raise StepFailed("bronze-stream", str(exc)) from None
        return recreated

    # -- one window --------------------------------------------------------------------
    def run_job(self, job: str, window: Window) -> str:
        """Run one medallion job over ``window`` to COMPLETED; returns the application's name."""
        name = app_name(self.settings.release, job, window)
        self.progress(window, f"{job}: {name}")
        try:
            existing = self.apps.get(name)
            if existing is not None and state_of(existing) in FAILED_STATES:
                self.apps.delete(name)
                existing = None
            if existing is None:
                template = self.apps.scheduled(f"{self.settings.release}-{job}")["spec"]["template"]
                spec = dict(template)
                module = (template.get("arguments") or [job.replace("-", "_")])[0]
                spec["arguments"] = [module, "--window", str(window)]
                self.apps.create(name, spec, {**MANAGED_BY, "iotpipe.io/job": job})
            self.apps.wait_for(name, {COMPLETED}, self.settings.job_timeout_seconds)
        except SparkAppError as exc:
            raise StepFailed(job, str(exc)) from None
        except ApiException as exc:
            raise StepFailed(job, f"Kubernetes API: {exc.status} {exc.reason}") from None
        return name

    def gate(self, window: Window, layers: tuple[Layer, ...] = GATE_LAYERS) -> None:
        s = self.settings
        for layer in layers:
            self.progress(window, f"quality gate: {layer}")
            try:
                verdict = asyncio.run(
                    run_gate(
                        s.quality_gate_url,
                        s.quality_gate_token.get_secret_value(),
                        layer,
                        window,
                        timeout_s=s.gate_timeout_seconds,
                    )
                )
            except GateError as exc:
                raise StepFailed(f"quality gate ({layer})", str(exc)) from None
            if not verdict.passed:
                failed = ", ".join(verdict.failed_expectations) or "no expectation named"
                raise StepFailed(
                    f"quality gate ({layer})",
                    f"verdict {verdict.verdict} (run {verdict.run_id}); failed: {failed}",
                )

    def loaded_windows(self, window: Window) -> list[dict[str, Any]]:
        """The loader's ``GET /loaded-windows``: each loaded window starting in ``window``,
        with the Gold partitions that changed since its load (every page)."""
        windows: list[dict[str, Any]] = []
        params: dict[str, str] = {**window_params(window), "limit": "1000"}
        while True:
            page = self._loaded_windows_page(params)
            windows.extend(page["items"])
            if not page.get("next_cursor"):
                return windows
            params["cursor"] = page["next_cursor"]

    def _loaded_windows_page(self, params: dict[str, str]) -> dict[str, Any]:
        return self._call_loader(
            "loaded windows",
            lambda url, timeout: httpx.get(url + "/loaded-windows", params=params, timeout=timeout),
        )

    def load(self, window: Window) -> dict[str, Any]:
        """``POST /loads``: a job (202 + ``Location``), followed until it has finished within
        ``loader_timeout_seconds``; an older loader's synchronous 201 is taken as well."""
        s = self.settings
        self.progress(window, "warehouse load")
        body = window_params(window)
        headers = {"Authorization": f"Bearer {s.loader_token.get_secret_value()}"}
        return self._call_loader(
            "warehouse load",
            lambda url, timeout: asyncio.run(
                submit(url + "/loads", json=body, headers=headers, timeout_s=timeout)
            ),
        )

    def _call_loader(
        self, step: str, call: Callable[[str, float], httpx.Response]
    ) -> dict[str, Any]:
        """One request to the warehouse loader (``call(base_url, timeout)``), retried on
        what :func:`_retry_loader` deems passing; its JSON body, or :class:`StepFailed`."""
        s = self.settings
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=1, max=10),
                retry=retry_if_exception(_retry_loader),
                reraise=True,
            ):
                with attempt:
                    response = call(s.loader_url.rstrip("/"), s.loader_timeout_seconds)
                    response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise StepFailed(step, f"{exc.response.status_code} {_detail(exc.response)}") from None
        except httpx.HTTPError as exc:
            raise StepFailed(step, f"loader at {s.loader_url} unreachable: {exc}") from None
        except JobError as exc:
            raise StepFailed(step, f"loader at {s.loader_url}: {exc}") from None
        answer: dict[str, Any] = response.json()
        return answer

    def run_window(self, window: Window) -> WindowResult:
        result = WindowResult(window=window, ok=False)
        try:
            for job in JOBS:
                result.applications.append(self.run_job(job, window))
                self.on_step_done(job)
            self.gate(window)
            self.on_step_done("quality-gate")
            result.load = self.load(window)
            self.on_step_done("warehouse-load")
        except StepFailed as exc:
            log.error("window %s failed at %s", window, exc)
            result.error = exc
            return result
        result.ok = True
        return result

    def reload_window(self, window: Window) -> WindowResult:
        """Run the Gold gate on one window and load it again. Its Spark steps are not rerun
        (the medallion's schedule already recomputed what late data touched), and only Gold is
        gated: Gold's files are what changed and what the loader's verdict must cover."""
        result = WindowResult(window=window, ok=False)
        try:
            self.gate(window, (Layer.GOLD,))
            result.load = self.load(window)
        except StepFailed as exc:
            log.error("reload of %s failed at %s", window, exc)
            result.error = exc
            return result
        result.ok = True
        return result

    # -- runs ----------------------------------------------------------------------------
    def reconcile(
        self, lookback: Window, on_window: Callable[[WindowResult], None] | None = None
    ) -> ReconcileResult:
        """Every window loaded in ``lookback`` whose Gold changed since its load goes
        through the gate and the loader again (delete-then-insert: the warehouse then holds
        Gold as it is now). A window whose gate fails keeps its previous rows and is
        reported; the others still run."""
        outcome = ReconcileResult()
        for loaded in self.loaded_windows(lookback):
            window = window_of(
                datetime.fromisoformat(loaded["window_start"]),
                datetime.fromisoformat(loaded["window_end"]),
            )
            outcome.checked.append(str(window))
            changed = loaded.get("changed_partitions") or []
            if not changed:
                continue
            log.info(
                "window %s changed since load %s (%s): reloading",
                window,
                loaded.get("load_id"),
                ", ".join(changed),
            )
            self.progress(window, f"reload ({', '.join(changed)} changed)")
            result = self.reload_window(window)
            (outcome.reloaded if result.ok else outcome.refused).append(result)
            if on_window:
                on_window(result)
        counts = outcome.counts()
        log.info("reconcile of %s: %s", lookback, ", ".join(f"{k} {v}" for k, v in counts.items()))
        return outcome

    def backfill(
        self, window: Window, on_day: Callable[[WindowResult], None] | None = None
    ) -> list[WindowResult]:
        """Each UTC day of ``window`` in order; stops at the first day that fails."""
        results = []
        for day in window.days():
            result = self.run_window(day)
            results.append(result)
            if on_day:
                on_day(result)
            if not result.ok:
                break
        return results


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text
