"""Which run decides a window's verdict (issue 21 item 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from quality_gate.models import RunDetail
from quality_gate.store import RunStore

from iotpipe.gate_client import Layer, Verdict
from iotpipe.windows import Window

DAY = Window.parse("2026-11-26")
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def record(store: RunStore, window: str, verdict: Verdict, minutes: int) -> str:
    at = T0 + timedelta(minutes=minutes)
    run_id = f"gold-{minutes}"
    store.save(
        RunDetail(
            run_id=run_id,
            layer=Layer.GOLD,
            window=str(Window.parse(window)),
            verdict=verdict,
            pass_rate=1.0 if verdict is Verdict.PASS else 0.5,
            threshold=1.0,
            evaluated_expectations=2,
            successful_expectations=2 if verdict is Verdict.PASS else 1,
            failed_expectations=[] if verdict is Verdict.PASS else ["health_pct_in_range"],
            row_count=10,
            engine="pandas",
            started_at=at,
            finished_at=at,
            result_location="x",
            expectations=[],
            result={},
        )
    )
    return run_id


def deciding(store: RunStore, window: str) -> str | None:
    run = store.deciding_run(Layer.GOLD, Window.parse(window))
    return None if run is None else run.run_id


def test_a_newer_failure_over_part_of_a_window_outvotes_an_older_pass_of_all_of_it(
    tmp_path: Path,
) -> None:
    store = RunStore(str(tmp_path / "_quality"))
    assert deciding(store, "2026-11-26") is None
    day = record(store, "2026-11-26", Verdict.PASS, 0)
    assert deciding(store, "2026-11-26T10") == day  # a covering run decides its parts
    hour = record(store, "2026-11-26T10", Verdict.FAIL, 5)
    assert deciding(store, "2026-11-26") == hour, "the narrower, newer failure wins"
    assert deciding(store, "2026-11-26T10") == hour
    assert deciding(store, "2026-11-26T11") == day, "hours it did not touch keep the pass"
    assert deciding(store, "2026-11-27") is None, "nothing covers another day"
    newer_pass = record(store, "2026-11-26", Verdict.PASS, 10)
    assert deciding(store, "2026-11-26") == newer_pass, "a newer covering run decides again"
    record(store, "2026-11-26T12", Verdict.PASS, 15)  # a narrower pass does not cover the day
    assert deciding(store, "2026-11-26") == newer_pass
