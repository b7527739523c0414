"""A load from request to history: ask the Gold gate, read Gold, replace the window, record.

The database work is blocking (both drivers are synchronous), so it runs in worker
threads; the event loop stays free for health checks and history reads meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from iotpipe.gate_client import GateError, Layer, gate_verdict
from iotpipe.lake import Lake
from iotpipe.windows import Window, WindowFields
from warehouse_loader import metrics
from warehouse_loader.gold import GoldSlice, gold_fingerprints, read_gold
from warehouse_loader.history import History, LoadRecord, LoadStatus
from warehouse_loader.settings import LoaderSettings
from warehouse_loader.warehouse import Warehouse

log = logging.getLogger(__name__)

WINDOW_GRAIN = timedelta(minutes=5)
"""Gold's window length: loads cover whole 5-minute windows."""


@dataclass(frozen=True)
class GateDecision:
    verdict: str
    """The gate's verdict, or ``unavailable`` when it could not be asked."""
    refusal: str | None = None
    """Why the window may not be loaded (None: it may)."""
    unreachable: bool = False
    """The gate could not be reached (worth retrying later)."""
    fingerprints: dict[str, str] | None = None
    """What the deciding run validated, per Gold partition (None: nothing to compare)."""
    run_id: str | None = None

    def changed(self, gold: GoldSlice) -> list[str]:
        """The partitions of ``gold`` whose files are not the ones the gate validated."""
        if not self.fingerprints:  # no verdict, an override, or a run from before fingerprints
            return []
        return sorted(p for p, fp in gold.fingerprints.items() if self.fingerprints.get(p) != fp)


class LoadRequest(BaseModel):
    """Load the Gold windows that start in ``[window_start, window_end)``."""

    window_start: AwareDatetime = Field(examples=["2026-11-26T00:00:00Z"])
    window_end: AwareDatetime = Field(examples=["2026-11-27T00:00:00Z"])
    override_gate: bool = Field(
        default=False,
        description="Load although the Gold gate did not pass (needs `override_reason`).",
    )
    override_reason: str | None = Field(
        default=None,
        min_length=10,
        max_length=1024,
        description="Why the gate is overridden; logged and kept in the load history.",
    )

    @model_validator(mode="after")
    def _check(self) -> LoadRequest:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        for name in ("window_start", "window_end"):
            value: datetime = getattr(self, name)
            if (value - datetime(2000, 1, 1, tzinfo=UTC)) % WINDOW_GRAIN:
                raise ValueError(
                    f"{name} {value.isoformat()} is not on a 5-minute boundary "
                    "(Gold's windows are 5 minutes long)"
                )
        if self.override_gate and not self.override_reason:
            raise ValueError("override_gate needs an override_reason (at least 10 characters)")
        if self.override_reason and not self.override_gate:
            raise ValueError("override_reason is only used with override_gate: true")
        return self

    @property
    def window(self) -> Window:
        return Window(self.window_start.astimezone(UTC), self.window_end.astimezone(UTC))

    def too_long(self, max_days: int) -> str | None:
        """Why the window may not be loaded in one go (``LOADER_MAX_WINDOW_DAYS``), or None."""
        if self.window_end - self.window_start <= timedelta(days=max_days):
            return None
        return (
            f"the window spans more than {max_days} days (LOADER_MAX_WINDOW_DAYS); "
            "split it into smaller loads"
        )


class LoadedWindow(WindowFields):
    """A window the warehouse holds from a load, and whether Gold changed since."""

    load_id: str = Field(description="The succeeded load whose rows the warehouse holds.")
    loaded_at: datetime | None
    rows_inserted: int | None
    changed_partitions: list[str] = Field(
        default_factory=list,
        description="Gold partitions whose files are not the ones that load read (late data "
        "rewrote them): the window is due for a reload.",
    )
    comparable: bool = Field(
        description="False when the load recorded no Gold fingerprints (before migration 4): "
        "nothing to compare, so it is never reported changed."
    )

    @property
    def changed(self) -> bool:
        return bool(self.changed_partitions)


def changed_partitions(loaded: dict[str, str], now: dict[str, str]) -> list[str]:
    """Partitions whose files differ, appeared or disappeared since ``loaded`` was read."""
    return sorted(p for p in loaded.keys() | now.keys() if loaded.get(p) != now.get(p))


class LoadRefused(Exception):
    """Not loaded (409): the gate did not pass, or Gold has nothing for the window."""

    def __init__(self, record: LoadRecord) -> None:
        super().__init__(record.detail)
        self.record = record


class GateUnavailable(LoadRefused):
    """Not loaded (503): the gate could not be asked; try again later."""


class LoadFailed(Exception):
    """The load ran and was rolled back (500); the window's previous contents are unchanged."""

    def __init__(self, record: LoadRecord) -> None:
        super().__init__(record.detail)
        self.record = record


def _now() -> datetime:
    return datetime.now(UTC)


def pause_hook(seconds: float) -> Callable[[], None]:
    """The crash tests' hook: hold the transaction open between DELETE and INSERT."""

    def pause() -> None:
        log.warning("test hook: pausing %.0fs between DELETE and INSERT", seconds)
        time.sleep(seconds)

    return pause


class LoadService:
    def __init__(
        self,
        settings: LoaderSettings,
        warehouse: Warehouse,
        *,
        lake: Lake | None = None,
    ) -> None:
        self.settings = settings
        self.warehouse = warehouse
        self.history = History(warehouse)
        self.lake = lake or Lake.from_settings(settings.lake)
        self.dialect = warehouse.dialect.name
        metrics.initialise(self.dialect)
        self.after_delete: Callable[[], None] | None = (
            pause_hook(settings.test_pause_after_delete_s)
            if settings.test_pause_after_delete_s
            else None
        )

    async def start(self) -> None:
        """Apply pending migrations; close out loads a previous process left running."""
        await asyncio.to_thread(self.warehouse.migrate)
        interrupted = await asyncio.to_thread(self.history.interrupt_running)
        if interrupted:
            log.warning("marked %d load(s) interrupted by a previous stop", interrupted)
            metrics.LOADS.labels(self.dialect, LoadStatus.INTERRUPTED.value).inc(interrupted)

    def loaded_windows(self, start: datetime, end: datetime) -> list[LoadedWindow]:
        """Per window starting in ``[start, end)``, the newest succeeded load, compared with
        Gold's files now. A window inside a newer succeeded load's window is left out: that
        load replaced its rows and is the one compared."""
        newest: list[LoadRecord] = []
        for record in self.history.succeeded_between(start, end):
            window = Window(record.window_start, record.window_end)
            if not any(Window(n.window_start, n.window_end).contains(window) for n in newest):
                newest.append(record)
        out = []
        for record in newest:
            window = Window(record.window_start, record.window_end)
            loaded = record.gold_fingerprints
            out.append(
                LoadedWindow(
                    window_start=window.start,
                    window_end=window.end,
                    load_id=record.id,
                    loaded_at=record.finished_at,
                    rows_inserted=record.rows_inserted,
                    changed_partitions=(
                        []
                        if loaded is None
                        else changed_partitions(loaded, gold_fingerprints(self.lake, window))
                    ),
                    comparable=loaded is not None,
                )
            )
        out.sort(key=lambda w: w.window)
        return out

    async def _ask_gate(self, window: Window) -> GateDecision:
        base_url = self.settings.quality_gate_url
        if not base_url:
            return GateDecision(
                "unavailable", "no quality gate is configured (LOADER_QUALITY_GATE_URL)"
            )
        try:
            answer = await gate_verdict(
                base_url, Layer.GOLD, window, timeout_s=self.settings.gate_timeout_s
            )
        except GateError as exc:
            return GateDecision("unavailable", str(exc), unreachable=True)
        if answer.passed:
            return GateDecision(
                answer.verdict.value, fingerprints=answer.data_fingerprints, run_id=answer.run_id
            )
        if answer.failed_expectations:
            why = f"failed expectations: {', '.join(answer.failed_expectations)}"
        else:
            why = "no quality run covers this window yet"
        rate = f", pass rate {answer.pass_rate:.1%}" if answer.pass_rate is not None else ""
        run = f" (run {answer.run_id}{rate})" if answer.run_id else ""
        return GateDecision(
            answer.verdict.value, f"Gold gate verdict for {window} is {answer.verdict}{run}: {why}"
        )

    async def _save(self, record: LoadRecord, *, new: bool = False) -> None:
        await asyncio.to_thread(self.history.add if new else self.history.update, record)

    def _finish(self, record: LoadRecord, status: LoadStatus, detail: str | None) -> datetime:
        record.status = status
        record.detail = detail
        record.finished_at = _now()
        metrics.LOADS.labels(self.dialect, status.value).inc()
        return record.finished_at

    async def load(self, request: LoadRequest) -> LoadRecord:
        window = request.window
        record = LoadRecord(
            id=str(uuid.uuid4()),
            window_start=window.start,
            window_end=window.end,
            status=LoadStatus.RUNNING,
            requested_at=_now(),
            override_reason=request.override_reason,
        )
        gate = await self._ask_gate(window)
        record.gate_verdict = gate.verdict
        if gate.refusal is not None and not request.override_gate:
            self._finish(record, LoadStatus.REFUSED, gate.refusal)
            await self._save(record, new=True)
            raise (GateUnavailable if gate.unreachable else LoadRefused)(record)
        if gate.refusal is not None:
            metrics.GATE_OVERRIDES.labels(self.dialect).inc()
            log.warning(
                "load %s of %s overrides the Gold gate (%s): %s",
                record.id,
                window,
                gate.refusal,
                request.override_reason,
            )
        await self._save(record, new=True)
        started = time.perf_counter()
        try:
            gold = await asyncio.to_thread(read_gold, self.lake, window)
            record.gold_rows = gold.rows
            record.gold_fingerprints = gold.fingerprints
            changed = [] if request.override_gate else gate.changed(gold)
            counts = None
            if gold.rows and not changed:
                counts = await asyncio.to_thread(
                    self.warehouse.load, gold, after_delete=self.after_delete
                )
        except Exception as exc:
            record.duration_s = time.perf_counter() - started
            metrics.LOAD_DURATION.labels(self.dialect).observe(record.duration_s)
            self._finish(
                record,
                LoadStatus.FAILED,
                f"rolled back, the window's previous contents are unchanged: "
                f"{type(exc).__name__}: {exc}",
            )
            log.exception("load %s of %s failed", record.id, window)
            await self._save(record)
            raise LoadFailed(record) from exc
        if changed:
            self._finish(
                record,
                LoadStatus.REFUSED,
                f"Gold changed after the gate checked it (run {gate.run_id}): "
                f"{', '.join(changed)} of {gold.location} hold other files now; run the Gold "
                "gate on the window again, then load (the warehouse is unchanged)",
            )
            await self._save(record)
            raise LoadRefused(record)
        if counts is None:
            self._finish(
                record,
                LoadStatus.REFUSED,
                f"Gold at {gold.location} has no rows for {window}; nothing to load "
                "(the warehouse is unchanged)",
            )
            await self._save(record)
            raise LoadRefused(record)
        record.duration_s = time.perf_counter() - started
        record.rows_deleted = counts.rows_deleted
        record.rows_inserted = counts.rows_inserted
        finished = self._finish(record, LoadStatus.SUCCEEDED, None)
        await self._save(record)
        metrics.LOAD_DURATION.labels(self.dialect).observe(record.duration_s)
        metrics.ROWS_LOADED.labels(self.dialect).inc(counts.rows_inserted)
        metrics.ROWS_DELETED.labels(self.dialect).inc(counts.rows_deleted)
        metrics.LAST_SUCCESS.labels(self.dialect).set(finished.timestamp())
        log.info(
            "loaded %s: %d rows deleted, %d inserted in %.2fs",
            window,
            counts.rows_deleted,
            counts.rows_inserted,
            record.duration_s,
        )
        return record
