"""CSV replay: recorded readings back onto the topic, as fast as possible or at a speed factor.

The file has a header with (at least) ``sensor_id,sensor_type,timestamp,value,unit,location``.
Each row becomes one event with a fresh ``event_id`` and the row's own event time. Rows
are sent as they are: a row that breaks the contract (a bad value, an unknown type)
goes to the topic too, so the pipeline's DLQ classifies it, as it would a real one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import orjson

from iotpipe.contract import SCHEMA_VERSION, SensorType

COLUMNS: Final = ("sensor_id", "sensor_type", "timestamp", "value", "unit", "location")
INVALID_LABEL: Final = "invalid"
"""``events_produced_total`` label of a row whose sensor type is not in the contract."""
_TYPES: Final = frozenset(t.value for t in SensorType)


class ReplayError(ValueError):
    """The CSV cannot be replayed (with a message that says why)."""


@dataclass(frozen=True)
class ReplayRow:
    key: bytes
    document: dict[str, object]
    label: str
    offset_s: float
    """Seconds after the first row's event time (never less than the row before's)."""


def _event_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _value(text: str) -> float | str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # not a number: sent as it is, the DLQ says schema_mismatch


def parse_rows(lines: Iterable[str]) -> list[ReplayRow]:
    """The replayable rows of a CSV document (its lines, header first)."""
    reader = csv.DictReader(lines)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ReplayError(
            f"the CSV lacks column(s) {', '.join(missing)}; "
            f"its header must name {','.join(COLUMNS)}"
        )
    rows: list[ReplayRow] = []
    first: float | None = None
    offset = 0.0
    for row in reader:
        fields = {c: (row.get(c) or "").strip() or None for c in COLUMNS}
        fields["value"] = _value(row.get("value") or "")
        moment = _event_time(row.get("timestamp") or "")
        if moment is not None:
            first = moment if first is None else first
            offset = max(offset, moment - first)
        sensor_type = str(fields["sensor_type"])
        rows.append(
            ReplayRow(
                key=str(fields["sensor_id"] or "").encode(),
                document={**fields, "schema_version": SCHEMA_VERSION},
                label=sensor_type if sensor_type in _TYPES else INVALID_LABEL,
                offset_s=offset,
            )
        )
    if not rows:
        raise ReplayError("the CSV has a header but no rows")
    return rows


def rows_from_bytes(data: bytes) -> list[ReplayRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReplayError(f"the CSV is not UTF-8: {exc}") from None
    return parse_rows(io.StringIO(text, newline=""))


def rows_from_path(path: str | Path, allowed: Path | None) -> tuple[Path, list[ReplayRow]]:
    """Rows of a CSV under ``allowed`` (the only folder path replays may read)."""
    if allowed is None:
        raise ReplayError("path replays are disabled (set SIMULATOR_REPLAY_DIR); upload the file")
    root = allowed.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ReplayError(f"path {str(path)!r} is outside the replay folder")
    if not target.is_file():
        raise ReplayError(f"no file {str(path)!r} in the replay folder")
    with target.open(encoding="utf-8-sig", newline="") as handle:
        return target, parse_rows(handle)


def encode(row: ReplayRow, event_id: str) -> bytes:
    return orjson.dumps({"event_id": event_id, **row.document})
