"""Runs persisted in the lake (``Lake.quality``), and an index of their summaries.

Layout, under ``<lake>/_quality/runs/<layer>/``:

- ``<run_id>.result.json``: the run's detail, with the full Great Expectations result;
- ``<run_id>.summary.json``: its summary, written last (a run without one is incomplete).

On start the store reads every summary back, so verdicts survive restarts.
"""

from __future__ import annotations

import logging
import threading

import pyarrow.fs as pafs
from pydantic import ValidationError

from iotpipe.gate_client import Layer, Verdict
from iotpipe.lakefs import filesystem
from iotpipe.windows import Window
from quality_gate.models import RunDetail, RunSummary

log = logging.getLogger(__name__)

SUMMARY = ".summary.json"
RESULT = ".result.json"


class RunNotFound(KeyError):
    pass


class RunStore:
    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")
        self._fs, self._root = filesystem(self.location)
        self._runs: dict[str, RunSummary] = {}
        self._lock = threading.Lock()

    def _path(self, layer: Layer, run_id: str, suffix: str) -> str:
        return f"{self._root}/runs/{layer.value}/{run_id}{suffix}"

    def result_location(self, layer: Layer, run_id: str) -> str:
        return f"{self.location}/runs/{layer.value}/{run_id}{RESULT}"

    def _write(self, path: str, data: bytes) -> None:
        """Write whole or not at all: a temporary file, then a rename."""
        folder, name = path.rsplit("/", 1)
        self._fs.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{name}.tmp"
        with self._fs.open_output_stream(temporary) as stream:
            stream.write(data)
        self._fs.move(temporary, path)

    def _read(self, path: str) -> bytes:
        with self._fs.open_input_stream(path) as stream:
            data: bytes = stream.readall()
            return data

    def load(self) -> int:
        """Read every persisted summary; returns how many runs are known."""
        selector = pafs.FileSelector(f"{self._root}/runs", recursive=True, allow_not_found=True)
        found = {}
        for info in self._fs.get_file_info(selector):
            if info.type == pafs.FileType.File and info.base_name.endswith(SUMMARY):
                try:
                    summary = RunSummary.model_validate_json(self._read(info.path))
                except ValidationError as exc:  # one bad file must not keep the gate down
                    log.warning("skipping unreadable run summary %s: %s", info.path, exc)
                    continue
                found[summary.run_id] = summary
        with self._lock:
            self._runs = found
        return len(found)

    def save(self, run: RunDetail) -> RunSummary:
        summary = run.summary()
        self._write(self._path(run.layer, run.run_id, RESULT), run.model_dump_json().encode())
        self._write(self._path(run.layer, run.run_id, SUMMARY), summary.model_dump_json().encode())
        with self._lock:
            self._runs[run.run_id] = summary
        return summary

    def summary(self, run_id: str) -> RunSummary:
        with self._lock:
            if run_id not in self._runs:
                raise RunNotFound(run_id)
            return self._runs[run_id]

    def detail(self, run_id: str) -> RunDetail:
        summary = self.summary(run_id)
        return RunDetail.model_validate_json(self._read(self._path(summary.layer, run_id, RESULT)))

    def runs(self, layer: Layer | None = None, limit: int | None = 100) -> list[RunSummary]:
        """Newest first."""
        with self._lock:
            selected = [r for r in self._runs.values() if layer is None or r.layer is layer]
        selected.sort(key=lambda r: (r.finished_at, r.run_id), reverse=True)
        return selected[:limit] if limit is not None else selected

    def deciding_run(self, layer: Layer, window: Window) -> RunSummary | None:
        """The run whose verdict holds for ``window``: the newest run of ``layer`` whose
        window contains it, unless a newer run over a part of it failed (a narrower
        check that found a problem is not outvoted by an older, wider pass)."""
        with self._lock:
            runs = [r for r in self._runs.values() if r.layer is layer]
        newest_first = sorted(runs, key=lambda r: (r.finished_at, r.run_id), reverse=True)
        for run in newest_first:
            ran = run.parsed_window
            if ran.contains(window):
                return run
            if run.verdict is Verdict.FAIL and ran.start < window.end and window.start < ran.end:
                return run
        return None
