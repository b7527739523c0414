"""Replay requests are validated before anything runs; job results stay bounded."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from dlq_inspector.models import MessageResult, Outcome, ReplayFilter, ReplayRequest
from dlq_inspector.replay import Job, _frozen_heap
from dlq_inspector.settings import DlqSettings
from pydantic import ValidationError

from iotpipe.contract import ErrorType


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "exactly one of"),
        ({"ids": ["0:1"], "filter": {}}, "exactly one of"),
        ({"ids": []}, "at least 1"),
        ({"ids": ["1"]}, "pattern"),
        ({"ids": ["0:1"], "patches": {"0:2": {}}}, "not in `ids`"),
        ({"filter": {"status": "done"}}, "status"),
        ({"filter": {}, "extra": 1}, "extra"),
    ],
)
def test_invalid_requests(body: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        ReplayRequest.model_validate(body)


def test_filter_translation() -> None:
    flt = ReplayFilter.model_validate(
        {"error_type": ["malformed_json"], "since": "2026-01-01T00:00:00Z", "status": "any"}
    ).to_filter()
    assert flt.error_types == {ErrorType.MALFORMED_JSON}
    assert flt.since_ms == 1_767_225_600_000
    assert flt.replayed is None
    assert ReplayFilter().to_filter().replayed is False  # default: only unresolved


def result(n: int, outcome: Outcome) -> MessageResult:
    return MessageResult(id=f"0:{n}", result=outcome)


def test_a_capped_job_keeps_refusals_before_successes_and_exact_counts() -> None:
    job = Job(ReplayRequest(ids=["0:1"]), keep_results=3)
    for n in range(5):
        job.add(result(n, Outcome.REPLAYED))
    job.add(result(5, Outcome.REFUSED))
    job.add(result(6, Outcome.ALREADY_REPLAYED))
    job.count_unkept(Outcome.REPLAYED, 10)
    view = job.view()
    assert view.counts[Outcome.REPLAYED] == 15
    assert view.counts[Outcome.REFUSED] == 1
    assert view.processed == 17
    assert [r.id for r in view.results] == ["0:0", "0:5", "0:6"]
    assert view.results_truncated
    assert job.view(results=False).results == []


def test_an_uncapped_job_keeps_everything_in_order() -> None:
    job = Job(ReplayRequest(ids=["0:1"]), keep_results=None)
    outcomes = [Outcome.REFUSED, Outcome.REPLAYED, Outcome.NOT_FOUND]
    for n, outcome in enumerate(outcomes):
        job.add(result(n, outcome))
    assert [r.result for r in job.view().results] == outcomes
    assert not job.view().results_truncated


def test_settings_need_a_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DLQ_API_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="api_token"):
        DlqSettings()
    monkeypatch.setenv("DLQ_API_TOKEN", "x" * 16)
    monkeypatch.setenv("DLQ_LEDGER_TOPIC", "replays")
    monkeypatch.setenv("KAFKA_DLQ_TOPIC", "dead")
    settings = DlqSettings()
    assert settings.ledger_topic == "replays"
    assert settings.kafka.dlq_topic == "dead"


def test_overlapping_jobs_give_the_collector_back_its_thresholds_once_all_ended() -> None:
    before = gc.get_threshold()
    first, second = _frozen_heap(), _frozen_heap()
    first.__enter__()
    second.__enter__()
    assert gc.get_threshold()[0] > before[0]
    first.__exit__(None, None, None)
    assert gc.get_freeze_count() > 0
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
