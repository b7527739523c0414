"""The load history: one row per load asked for, in the warehouse next to the data."""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from warehouse_loader.schema import LOAD_HISTORY
from warehouse_loader.warehouse import Warehouse, utc_naive

DETAIL_LIMIT = 4096
"""``load_history.detail`` is a VARCHAR(4096)."""


class LoadStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Rolled back: the window's previous contents are unchanged."""
    REFUSED = "refused"
    """Not attempted: the Gold gate did not pass, or Gold had no rows for the window."""
    INTERRUPTED = "interrupted"
    """The loader stopped while the load ran (its transaction was rolled back)."""


class LoadRecord(BaseModel):
    """A load: what was asked, what the gate said, and what happened."""

    id: str
    window_start: datetime
    window_end: datetime
    status: LoadStatus
    requested_at: datetime
    finished_at: datetime | None = None
    duration_s: float | None = Field(default=None, description="Wall time of the load.")
    gold_rows: int | None = Field(default=None, description="Gold rows in the window.")
    rows_deleted: int | None = Field(
        default=None, description="Warehouse rows of the window replaced."
    )
    rows_inserted: int | None = None
    gate_verdict: str | None = Field(
        default=None, description="The Gold gate's verdict: pass, fail, unknown or unavailable."
    )
    override_reason: str | None = Field(
        default=None, description="Set when the load went ahead without a passing gate."
    )
    detail: str | None = Field(default=None, description="Why it was refused or failed.")
    gold_fingerprints: dict[str, str] | None = Field(
        default=None,
        description="The Gold files the load read: per `window_date` partition, the digest of "
        "its files (iotpipe.lakefs.fingerprints). A reconcile compares it with Gold now to find "
        "windows late data rewrote after their load. Null for loads that did not read Gold.",
    )


COLUMNS = LOAD_HISTORY.column_names
_TIMESTAMPS = {"window_start", "window_end", "requested_at", "finished_at"}


def _to_row(record: LoadRecord) -> list[object]:
    values = record.model_dump()
    if values["detail"]:
        values["detail"] = values["detail"][:DETAIL_LIMIT]
    if values["gold_fingerprints"] is not None:
        values["gold_fingerprints"] = json.dumps(values["gold_fingerprints"], sort_keys=True)
    return [
        utc_naive(values[c]) if c in _TIMESTAMPS and values[c] is not None else values[c]
        for c in COLUMNS
    ]


def _from_row(row: tuple[object, ...]) -> LoadRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    for column in _TIMESTAMPS:
        value = values[column]
        if isinstance(value, datetime):
            values[column] = value.replace(tzinfo=UTC)
    if isinstance(values["gold_fingerprints"], str):
        values["gold_fingerprints"] = json.loads(values["gold_fingerprints"])
    return LoadRecord.model_validate(values)


class History:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def add(self, record: LoadRecord) -> None:
        placeholders = ", ".join(["%s"] * len(COLUMNS))
        with self.warehouse.transaction() as cursor:
            cursor.execute(
                f"INSERT INTO {LOAD_HISTORY.name} ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                _to_row(record),
            )

    def update(self, record: LoadRecord) -> None:
        row = _to_row(record)
        assignments = ", ".join(f"{c} = %s" for c in COLUMNS[1:])
        with self.warehouse.transaction() as cursor:
            cursor.execute(
                f"UPDATE {LOAD_HISTORY.name} SET {assignments} WHERE id = %s", [*row[1:], row[0]]
            )

    def get(self, load_id: str) -> LoadRecord | None:
        with self.warehouse.transaction() as cursor:
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {LOAD_HISTORY.name} WHERE id = %s", (load_id,)
            )
            row = cursor.fetchone()
        return _from_row(row) if row else None

    def list(
        self,
        *,
        limit: int = 100,
        status: LoadStatus | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[LoadRecord]:
        """Newest first (by request time, then id); ``after``: the (requested_at, id) of the
        last load of the previous page (a keyset: a page does not shift as loads arrive)."""
        conditions: list[str] = []
        params: list[object] = []
        if status:
            conditions.append("status = %s")
            params.append(status.value)
        if after is not None:
            conditions.append("(requested_at < %s OR (requested_at = %s AND id > %s))")
            at = utc_naive(after[0])
            params += [at, at, after[1]]
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.warehouse.transaction() as cursor:
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {LOAD_HISTORY.name} {where} "
                f"ORDER BY requested_at DESC, id LIMIT {int(limit)}",
                tuple(params),
            )
            rows = cursor.fetchall()
        return [_from_row(row) for row in rows]

    def succeeded_between(self, start: datetime, end: datetime) -> builtins.list[LoadRecord]:
        """Succeeded loads of windows starting in ``[start, end)``, newest first."""
        with self.warehouse.transaction() as cursor:
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {LOAD_HISTORY.name} "
                "WHERE status = %s AND window_start >= %s AND window_start < %s "
                "ORDER BY finished_at DESC, id",
                (LoadStatus.SUCCEEDED.value, utc_naive(start), utc_naive(end)),
            )
            rows = cursor.fetchall()
        return [_from_row(row) for row in rows]

    def interrupt_running(self) -> int:
        """At start-up: loads still ``running`` belong to a loader that died (one replica)."""
        with self.warehouse.transaction() as cursor:
            cursor.execute(
                f"UPDATE {LOAD_HISTORY.name} SET status = %s, detail = %s, finished_at = %s "
                "WHERE status = %s",
                (
                    LoadStatus.INTERRUPTED.value,
                    "the loader stopped while this load ran; its transaction was rolled back",
                    utc_naive(datetime.now(UTC)),
                    LoadStatus.RUNNING.value,
                ),
            )
            return int(cursor.rowcount)
