"""Replays on a real broker: patched, validated, sent once, refused with reasons, as jobs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import orjson
import pytest
from dlq_inspector.replay import HEADER_REPLAY_OF

from iotpipe.contract import SENSOR_TYPES, ErrorType, SensorType, parse_event
from iotpipe.dlq import DeadLetter
from iotpipe.settings import KafkaSettings

from .conftest import AUTH, DlqEnv, dlq_settings, letter, running, wrong_unit_letters

pytestmark = pytest.mark.integration


def unit_fixes(ids: list[str], letters: list[DeadLetter]) -> dict[str, dict[str, Any]]:
    """The per-message patch that fixes each wrong-unit letter."""
    fixes = {}
    for message, d in zip(ids, letters, strict=True):
        sensor_type = SensorType(orjson.loads(d.value)["sensor_type"])
        fixes[message] = {"unit": SENSOR_TYPES[sensor_type].unit}
    return fixes


async def replay_ok(dlq: DlqEnv, **body: Any) -> dict[str, Any]:
    response = await dlq.replay(**body)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] == "succeeded", job
    return job


def by_outcome(job: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for result in job["results"]:
        found.setdefault(result["result"], set()).add(result["id"])
    return found


async def test_a_patched_replay_is_sent_once_even_when_requested_twice(dlq: DlqEnv) -> None:
    letters = wrong_unit_letters(6, start_ms=int(time.time() * 1000))
    ids = await dlq.write(letters)
    request = {"ids": ids, "patches": unit_fixes(ids, letters)}

    first = await replay_ok(dlq, **request)
    assert first["counts"]["replayed"] == 6
    assert by_outcome(first) == {"replayed": set(ids)}

    sent = await dlq.events()
    assert len(sent) == 6
    originals = {orjson.loads(d.value)["event_id"]: d for d in letters}
    for record in sent:
        event = parse_event(record.value)  # valid against the contract
        assert record.key == event.sensor_id.encode()
        assert event.unit == SENSOR_TYPES[event.sensor_type].unit
        source = originals.pop(str(event.event_id))
        assert dict(record.headers)[HEADER_REPLAY_OF] == source.key.encode()
    assert originals == {}
    targets = {(r["target"]["partition"], r["target"]["offset"]) for r in first["results"]}
    assert targets == {(r.partition, r.offset) for r in sent}

    second = await replay_ok(dlq, **request)
    assert second["counts"]["replayed"] == 0
    assert second["counts"]["already_replayed"] == 6
    assert all(first["id"] in r["reason"] for r in second["results"])
    assert len(await dlq.events()) == 6, "a repeated request must not send again"

    listed = (await dlq.client.get("/dlq/messages", params={"replayed": "true"})).json()
    assert {item["id"] for item in listed["items"]} == set(ids)
    assert all(item["replayed"]["replay_id"] == first["id"] for item in listed["items"])
    assert all(item["replayed"]["patched"] for item in listed["items"])
    stats = (await dlq.client.get("/dlq/stats")).json()
    assert (stats["replayed"], stats["unresolved"]) == (6, 0)

    forced = await replay_ok(dlq, **request, force=True)
    assert forced["counts"]["replayed"] == 6
    assert len(await dlq.events()) == 12


async def test_unfixable_messages_are_refused_with_the_reason(dlq: DlqEnv) -> None:
    now = int(time.time() * 1000)
    good = wrong_unit_letters(1, start_ms=now)[0]
    document = orjson.loads(good.value)
    without_time = orjson.dumps({k: v for k, v in document.items() if k != "timestamp"})
    letters = [
        letter(b'{"sensor_id": "s-1", "val', ErrorType.MALFORMED_JSON, offset=1, at_ms=now),
        letter(without_time, ErrorType.MISSING_REQUIRED, offset=2, at_ms=now + 1),
        letter(b"[1, 2]", ErrorType.SCHEMA_MISMATCH, offset=3, at_ms=now + 2),
        letter(good.value, ErrorType.OUT_OF_CONTRACT, offset=4, at_ms=now + 3),
    ]
    truncated, missing, array, wrong_unit = await dlq.write(letters)
    job = await replay_ok(
        dlq,
        ids=[truncated, missing, array, wrong_unit, "0:999999"],
        patches={
            truncated: {"value": 1.0},
            array: {"sensor_id": "s-3"},
            wrong_unit: {"value": "hot"},  # the patch itself breaks the contract
        },
    )
    results = {r["id"]: r for r in job["results"]}
    assert job["counts"]["refused"] == 4
    assert job["counts"]["not_found"] == 1
    assert job["counts"]["replayed"] == 0
    assert results[truncated]["error_type"] == "malformed_json"
    assert "not JSON" in results[truncated]["reason"]
    assert results[missing]["error_type"] == "missing_required"
    assert "timestamp" in results[missing]["reason"]
    assert results[array]["error_type"] == "schema_mismatch"
    assert "not an object" in results[array]["reason"]
    assert results[wrong_unit]["error_type"] == "schema_mismatch"
    assert "value" in results[wrong_unit]["reason"]
    assert results["0:999999"]["result"] == "not_found"
    assert await dlq.events() == []
    assert (await dlq.client.get("/dlq/stats")).json()["unresolved"] == 4


async def test_cut_letters_and_events_dated_ahead_are_refused(dlq: DlqEnv) -> None:
    """A letter that keeps only the first part of its source record cannot be replayed
    (the inspector says where the whole is); an event dated beyond the contract's bound
    ahead of now is refused as the stream would dead-letter it again."""
    now = int(time.time() * 1000)
    ahead, fixable = wrong_unit_letters(2, start_ms=now, first_offset=20)
    from_the_future = orjson.loads(ahead.value) | {"timestamp": "2099-01-01T00:00:00Z"}
    ahead = dataclasses.replace(ahead, value=orjson.dumps(from_the_future))
    cut = dataclasses.replace(
        letter(
            b'{"sensor_id": "s-1", "value": 1, "pad": "xxxx',
            ErrorType.MALFORMED_JSON,
            offset=7,
            at_ms=now,
        ),
        source_size=1_048_000,
    )
    ids = await dlq.write([ahead, fixable, cut])
    job = await replay_ok(dlq, ids=ids, patches=unit_fixes(ids[:2], [ahead, fixable]))

    results = {r["id"]: r for r in job["results"]}
    assert results[ids[1]]["result"] == "replayed"
    assert results[ids[0]]["result"] == "refused"
    assert results[ids[0]]["error_type"] == "out_of_contract"
    assert "ahead of the event's arrival" in results[ids[0]]["reason"]
    assert results[ids[2]]["result"] == "refused"
    assert "of the source record's 1048000 bytes" in results[ids[2]]["reason"]
    assert "sensor-events:1:7" in results[ids[2]]["reason"]
    assert len(await dlq.events()) == 1


async def test_dry_run_shows_what_would_be_sent_and_sends_nothing(dlq: DlqEnv) -> None:
    letters = wrong_unit_letters(4, start_ms=int(time.time() * 1000))
    ids = await dlq.write(letters)
    fixes = unit_fixes(ids, letters)
    broken = ids[0]
    fixes[broken] = {"unit": "furlongs"}

    dry = await replay_ok(dlq, ids=ids, patches=fixes, dry_run=True)
    assert dry["dry_run"] is True
    assert by_outcome(dry) == {"would_replay": set(ids[1:]), "refused": {broken}}
    for result in dry["results"]:
        if result["result"] == "would_replay":
            assert result["event"]["unit"] == fixes[result["id"]]["unit"]
    assert await dlq.events() == []

    real = await replay_ok(dlq, ids=ids, patches=fixes)
    assert by_outcome(real) == {"replayed": set(ids[1:]), "refused": {broken}}
    assert len(await dlq.events()) == 3


async def test_unauthenticated_replays_are_refused(dlq: DlqEnv) -> None:
    ids = await dlq.write(wrong_unit_letters(2, start_ms=int(time.time() * 1000)))
    body = {"ids": ids, "patch": {"unit": "celsius"}}
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": "x"},
    ):
        response = await dlq.client.post("/dlq/replay", json=body, headers=headers)
        assert response.status_code == 401
        assert "bearer token" in response.json()["detail"]
    assert await dlq.events() == []
    assert (await dlq.client.get("/dlq/stats")).json()["replayed"] == 0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "exactly one of `ids` or `filter`"),
        ({"ids": ["0:1"], "filter": {}}, "exactly one"),
        ({"ids": ["zero"]}, "ids.0"),
        ({"ids": ["0:1"], "patches": {"0:2": {"unit": "g"}}}, "not in `ids`"),
        ({"ids": ["0:1"], "patch": [1]}, "patch"),
        ({"filter": {"error_type": ["nope"]}}, "error_type"),
        ({"ids": ["0:1"], "surprise": True}, "surprise"),
    ],
)
async def test_invalid_replay_requests_get_a_clear_422(
    shared_dlq: DlqEnv, body: dict[str, Any], says: str
) -> None:
    response = await shared_dlq.client.post("/dlq/replay", json=body, headers=AUTH)
    assert response.status_code == 422
    assert says in response.json()["detail"]


async def test_concurrent_identical_requests_and_dlq_duplicates_replay_once(dlq: DlqEnv) -> None:
    letters = wrong_unit_letters(5, start_ms=int(time.time() * 1000))
    # the streaming job may dead-letter the same source record twice (after a restart)
    ids = await dlq.write([*letters, letters[0]])
    request = {"filter": {"error_type": ["out_of_contract"]}, "patch": {"unit": "celsius"}}

    a, b = await asyncio.gather(dlq.replay(**request), dlq.replay(**request))
    jobs = [a.json(), b.json()]
    replayed = [r["id"] for job in jobs for r in job["results"] if r["result"] == "replayed"]
    temperature = [i for i, d in zip(ids, letters, strict=False) if b'"temperature"' in d.value]
    assert sorted(replayed) == sorted(temperature)
    sent = await dlq.events()
    assert len(sent) == len(temperature)
    assert len({parse_event(r.value).event_id for r in sent}) == len(temperature)
    duplicate = ids[-1]
    outcomes = {r["result"] for job in jobs for r in job["results"] if r["id"] == duplicate}
    assert outcomes <= {"already_replayed"}


async def test_the_ledger_survives_a_restart(
    kafka_settings: KafkaSettings, topics: dict[str, str]
) -> None:
    settings = dlq_settings(kafka_settings, topics)
    async with running(settings) as first:
        letters = wrong_unit_letters(3, start_ms=int(time.time() * 1000))
        ids = await first.write(letters)
        job = await replay_ok(first, ids=ids, patches=unit_fixes(ids, letters))
        assert job["counts"]["replayed"] == 3
    async with running(settings) as second:
        again = await replay_ok(second, ids=ids, patches=unit_fixes(ids, letters))
        assert again["counts"]["already_replayed"] == 3
        assert len(await second.events()) == 3
        stats = (await second.client.get("/dlq/stats")).json()
        assert (stats["replayed"], stats["unresolved"]) == (3, 0)


async def test_a_large_replay_runs_as_a_job_with_progress(
    kafka_settings: KafkaSettings, topics: dict[str, str]
) -> None:
    settings = dlq_settings(kafka_settings, topics, sync_replay_limit=10, results_kept=5)
    async with running(settings) as dlq:
        now = int(time.time() * 1000)
        letters = wrong_unit_letters(40, start_ms=now)
        broken = [
            letter(b"{oops", ErrorType.MALFORMED_JSON, offset=100 + i, at_ms=now + 100 + i)
            for i in range(3)
        ]
        ids = await dlq.write(letters + broken)
        fixes = unit_fixes(ids[:40], letters)
        response = await dlq.replay(ids=ids, patches=fixes)
        assert response.status_code == 202
        location = response.headers["Location"]
        assert location == f"/dlq/replays/{response.json()['id']}"
        for _ in range(600):
            job = (await dlq.client.get(location, headers=AUTH)).json()
            assert 0 <= job["processed"] <= job["total"] == 43
            if job["status"] not in ("pending", "running"):
                break
            await asyncio.sleep(0.05)
        assert job["status"] == "succeeded"
        assert job["processed"] == 43
        assert (job["counts"]["replayed"], job["counts"]["refused"]) == (40, 3)
        assert job["results_truncated"] is True
        assert len(job["results"]) == 5
        assert {r["id"] for r in job["results"] if r["result"] == "refused"} == set(ids[40:])
        assert len(await dlq.events()) == 40
        recent = (await dlq.client.get("/dlq/replays")).json()["items"]
        assert recent[0]["id"] == job["id"]
        assert (await dlq.client.get("/dlq/replays/nope", headers=AUTH)).status_code == 404


async def test_replay_metrics(dlq: DlqEnv) -> None:
    def sample(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    before = (await dlq.client.get("/metrics")).text
    now = int(time.time() * 1000)
    letters = wrong_unit_letters(3, start_ms=now - 60_000)
    ids = await dlq.write([*letters, letter(b"{", ErrorType.MALFORMED_JSON, offset=9, at_ms=now)])
    await replay_ok(dlq, ids=ids, patches=unit_fixes(ids[:3], letters))
    after = (await dlq.client.get("/metrics")).text
    replayed = 'dlq_replays_total{result="replayed"}'
    refused = 'dlq_replays_total{result="refused"}'
    seen = 'dlq_messages_seen_total{error_type="malformed_json"}'
    assert sample(after, replayed) - sample(before, replayed) == 3
    assert sample(after, refused) - sample(before, refused) == 1
    assert sample(after, seen) - sample(before, seen) == 1
    assert sample(after, "dlq_unresolved_messages") == 1
    assert 0 <= sample(after, "dlq_oldest_unresolved_age_seconds") < 60
    assert 'dlq_replay_duration_seconds_count{dry_run="false"}' in after


class LedgerWriteFailed(RuntimeError):
    """The fault these tests inject: a chunk's ledger records written, then an error."""


def fail_ledger_writes(
    dlq: DlqEnv, monkeypatch: pytest.MonkeyPatch, *, hang: bool = False
) -> list[int]:
    """Make the replayer's ledger write of every chunk go through and then fail (or hang,
    until cancelled); returns a list that counts the calls. The broker stays real."""
    replayer = dlq.app.state.inspector.replayer
    original = replayer._send_ledger
    calls: list[int] = []

    async def failing(*args: Any) -> Any:
        calls.append(1)
        await original(*args)
        if hang:
            await asyncio.Event().wait()
        raise LedgerWriteFailed("the ledger write failed after its records were sent")

    monkeypatch.setattr(replayer, "_send_ledger", failing)
    return calls


async def test_a_chunk_whose_ledger_write_fails_is_seen_by_no_one_and_a_retry_sends_it_once(
    dlq: DlqEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    letters = wrong_unit_letters(6, start_ms=int(time.time() * 1000))
    ids = await dlq.write(letters)
    request = {"ids": ids, "patches": unit_fixes(ids, letters)}
    with monkeypatch.context() as patched:
        calls = fail_ledger_writes(dlq, patched)
        response = await dlq.replay(**request)
    assert response.status_code == 200, response.text
    failed = response.json()
    assert failed["status"] == "failed", failed
    assert "LedgerWriteFailed" in failed["error"]
    assert calls, "the fault was not reached"

    # The events were written, and aborted with the ledger records: no reader sees them.
    assert len(await dlq.events(committed=False)) == 6
    assert await dlq.events() == []
    listed = (await dlq.client.get("/dlq/messages", params={"replayed": "true"})).json()
    assert listed["items"] == []

    retry = await replay_ok(dlq, **request)
    assert retry["counts"]["replayed"] == 6
    sent = await dlq.events()
    assert sorted(str(parse_event(r.value).event_id) for r in sent) == sorted(
        orjson.loads(d.value)["event_id"] for d in letters
    ), "each message exactly once"
    again = await replay_ok(dlq, **request)
    assert again["counts"]["already_replayed"] == 6


async def test_a_background_replay_cancelled_mid_chunk_leaves_nothing_and_resumes_exactly_once(
    kafka_settings: KafkaSettings, topics: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dlq_settings(kafka_settings, topics, replay_chunk=4, sync_replay_limit=1)
    letters = wrong_unit_letters(10, start_ms=int(time.time() * 1000))
    async with running(settings) as dlq:
        ids = await dlq.write(letters)
        request = {"ids": ids, "patches": unit_fixes(ids, letters)}
        calls = fail_ledger_writes(dlq, monkeypatch, hang=True)
        response = await dlq.replay(**request)
        assert response.status_code == 202, response.text
        for _ in range(300):  # until the first chunk hangs in its transaction
            if calls:
                break
            await asyncio.sleep(0.05)
        assert calls, "the replay never reached its first ledger write"
        monkeypatch.undo()
    # The app stopped (its jobs cancelled) in the middle of a chunk's transaction.
    async with running(settings) as dlq:
        assert await dlq.events() == []
        assert len(await dlq.events(committed=False)) >= 4, "the chunk had been sent"
        done = await replay_ok(dlq, **request, background=False)
        assert done["counts"]["replayed"] == 10
        assert len(await dlq.events()) == 10
