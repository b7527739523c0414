"""Per-step deadlines of the daily run: a step not done by its deadline is late.

Each deadline counts from the start of the run (the daily CronJob's start), so the
deadlines of later steps are larger: with the defaults the load is due 3.5 h after the
run starts (04:15 UTC at the chart's 00:45 schedule). A step that passes its deadline is
reported at that moment, while it (or an earlier step) is still running, and stays late
even if it then succeeds: a run that finishes, but late, still misses its SLA.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import TracebackType

log = logging.getLogger(__name__)

Late = Callable[[str, float], None]
"""Called (from a timer thread) with the step and its deadline in seconds."""


class StepDeadlines:
    """One timer per step from :meth:`start`; :meth:`done` marks a step finished in time."""

    def __init__(self, deadlines: Mapping[str, float], on_late: Late) -> None:
        self.deadlines = dict(deadlines)
        self.on_late = on_late
        self.late: list[str] = []
        self._done: set[str] = set()
        self._lock = threading.Lock()
        self._timers = {
            step: threading.Timer(seconds, self._expire, args=(step,))
            for step, seconds in self.deadlines.items()
        }
        for timer in self._timers.values():
            timer.daemon = True

    def start(self) -> StepDeadlines:
        for timer in self._timers.values():
            timer.start()
        return self

    def done(self, step: str) -> None:
        with self._lock:
            self._done.add(step)
        if step in self._timers:
            self._timers[step].cancel()

    def stop(self) -> None:
        """End of the run: steps not done by now were never reached; they are not late."""
        for timer in self._timers.values():
            timer.cancel()

    def missed(self) -> dict[str, bool]:
        with self._lock:
            return {step: step in self.late for step in self.deadlines}

    def _expire(self, step: str) -> None:
        with self._lock:
            if step in self._done:
                return
            self.late.append(step)
        log.warning("step %s passed its deadline (%.0f s)", step, self.deadlines[step])
        try:
            self.on_late(step, self.deadlines[step])
        except Exception:  # a report that fails must not stop the run
            log.exception("reporting the late step %s failed", step)

    def __enter__(self) -> StepDeadlines:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
