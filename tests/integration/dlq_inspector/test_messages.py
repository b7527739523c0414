"""Listing, filtering, paginating, inspecting and counting dead letters on a real broker."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from iotpipe.contract import ErrorType
from iotpipe.dlq import DeadLetter
from iotpipe.settings import KafkaSettings

from .conftest import AUTH, DlqEnv, dlq_settings, letter, running, topic_names

pytestmark = pytest.mark.integration

TYPES = list(ErrorType)


def mixed_letters(count: int, base_ms: int) -> list[DeadLetter]:
    """Dead letters of every error type, over 5 sensors, one second apart."""
    letters = []
    for i in range(count):
        error_type = TYPES[i % len(TYPES)]
        sensor = f"s-{i % 5}"
        if error_type is ErrorType.MALFORMED_JSON:
            # truncated JSON: the sensor id is still readable; every 8th is not text at all
            value = (
                b"\xff\xfe\x00binary" if i % 8 == 0 else f'{{"sensor_id": "{sensor}", "va'.encode()
            )
        else:
            value = f'{{"sensor_id": "{sensor}", "n": {i}}}'.encode()
        letters.append(letter(value, error_type, offset=1_000 + i, at_ms=base_ms + i * 1_000))
    return letters


def sensor_of(d: DeadLetter) -> str | None:
    return None if d.value.startswith(b"\xff") else d.value.split(b'"')[3].decode()


async def pages(dlq: DlqEnv, limit: int, **params: Any) -> tuple[list[str], str]:
    """Follow the cursor to the end; return every id seen and the last cursor."""
    ids: list[str] = []
    cursor = None
    for _ in range(1_000):
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await dlq.client.get("/dlq/messages", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return ids, cursor
    raise AssertionError("pagination did not end")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


async def test_list_filter_and_paginate_exactly(dlq: DlqEnv) -> None:
    base = int(time.time() * 1000) - 120_000
    letters = mixed_letters(30, base)
    ids = await dlq.write(letters)
    by_id = dict(zip(ids, letters, strict=True))
    in_time_order = [i for i, _ in sorted(by_id.items(), key=lambda kv: kv[1].dead_lettered_at_ms)]

    for limit in (1, 7, 30, 100):
        seen, _ = await pages(dlq, limit)
        assert seen == in_time_order, f"limit {limit}"

    wanted_types = [ErrorType.MISSING_REQUIRED, ErrorType.MALFORMED_JSON]
    seen, _ = await pages(dlq, 4, error_type=[t.value for t in wanted_types])
    assert seen == [i for i in in_time_order if by_id[i].error_type in wanted_types]
    assert len(seen) == 15

    seen, _ = await pages(dlq, 3, sensor_id="s-4")
    assert seen == [i for i in in_time_order if sensor_of(by_id[i]) == "s-4"]
    assert len(seen) == 5
    # the truncated (malformed) record's sensor id is still found; the binary one has none
    assert ErrorType.MALFORMED_JSON in {by_id[i].error_type for i in seen}

    since, until = base + 5_000, base + 15_000
    seen, _ = await pages(dlq, 4, since=iso(since), until=iso(until))
    assert seen == in_time_order[5:15]

    seen, _ = await pages(
        dlq,
        2,
        error_type="out_of_contract",
        sensor_id="s-3",
        since=iso(base),
        until=iso(base + 30_000),
    )
    assert seen == [
        i
        for i in in_time_order
        if by_id[i].error_type is ErrorType.OUT_OF_CONTRACT and sensor_of(by_id[i]) == "s-3"
    ]
    assert len(seen) == 2

    first = (await dlq.client.get("/dlq/messages", params={"limit": 1})).json()["items"][0]
    source = by_id[first["id"]]
    assert first["error_type"] == source.error_type.value
    assert first["source"] == {
        "topic": "sensor-events",
        "partition": source.source_partition,
        "offset": source.source_offset,
        "timestamp": iso(source.source_timestamp_ms).replace("+00:00", "Z"),
    }
    assert first["replayed"] is None


async def test_a_cursor_resumes_where_it_stopped_and_sees_new_messages(dlq: DlqEnv) -> None:
    base = int(time.time() * 1000) - 60_000
    first = await dlq.write(mixed_letters(6, base))
    seen, cursor = await pages(dlq, 4)
    assert sorted(seen) == sorted(first)

    later = await dlq.write(mixed_letters(3, base + 10_000))
    response = await dlq.client.get("/dlq/messages", params={"cursor": cursor, "limit": 50})
    page = response.json()
    assert [item["id"] for item in page["items"]] == later
    assert page["has_more"] is False
    again = await dlq.client.get("/dlq/messages", params={"cursor": cursor, "limit": 50})
    assert again.json() == page, "the same cursor gives the same page"


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"cursor": "not-a-cursor"}, 400, "cursor"),
        ({"cursor": "eyJ2IjoyLCJwIjpbXX0"}, 400, "version"),
        ({"cursor": "eyJ2IjoxLCJwIjpbWzAsMWUzMF1dfQ"}, 400, "cursor"),  # an offset of 1e30
        ({"limit": 0}, 422, "limit"),
        ({"limit": 501}, 422, "at most 500"),
        ({"error_type": "bogus"}, 422, "error_type"),
        ({"since": "2026-01-01T00:00:00"}, 422, "time zone"),
        ({"since": "yesterday"}, 422, "since"),
    ],
)
async def test_bad_queries_get_a_clear_4xx(
    shared_dlq: DlqEnv, params: dict[str, Any], status: int, says: str
) -> None:
    response = await shared_dlq.client.get("/dlq/messages", params=params)
    assert response.status_code == status
    assert says in response.json()["detail"]


async def test_show_one_message_safely(dlq: DlqEnv) -> None:
    now = int(time.time() * 1000)
    binary = letter(b"\x00\xff\xfe{bad", ErrorType.MALFORMED_JSON, offset=7, at_ms=now)
    text = letter(
        b'{"sensor_id": "s-9", "unit": 3}', ErrorType.SCHEMA_MISMATCH, offset=8, at_ms=now
    )
    binary_id, text_id = await dlq.write([binary, text])

    shown = (
        await dlq.client.get(f"/dlq/messages/{binary_id.replace(':', '/')}", headers=AUTH)
    ).json()
    assert base64.b64decode(shown["value_base64"]) == binary.value
    assert shown["value_text"] is None
    assert shown["value_json"] is None
    assert shown["error_type"] == "malformed_json"
    assert shown["error_detail"] == binary.error_detail
    assert shown["headers"]["source_offset"] == "7"
    assert shown["source"]["offset"] == 7

    shown = (
        await dlq.client.get(f"/dlq/messages/{text_id.replace(':', '/')}", headers=AUTH)
    ).json()
    assert shown["value_text"] == text.value.decode()
    assert shown["value_json"] == {"sensor_id": "s-9", "unit": 3}
    assert shown["sensor_id"] == "s-9"

    missing = await dlq.client.get("/dlq/messages/0/999999", headers=AUTH)
    assert missing.status_code == 404
    assert "no DLQ message" in missing.json()["detail"]
    assert (await dlq.client.get("/dlq/messages/0/-1", headers=AUTH)).status_code == 422


async def test_a_deeply_nested_dead_letter_is_shown_as_text(dlq: DlqEnv) -> None:
    """JSON nested deeper than a response can carry (300 levels) is shown as its text
    (value_json null) instead of failing the request with a 500."""
    now = int(time.time() * 1000)
    nested = b"[" * 300 + b"]" * 300
    (letter_id,) = await dlq.write([letter(nested, ErrorType.SCHEMA_MISMATCH, offset=3, at_ms=now)])
    shown = await dlq.client.get(f"/dlq/messages/{letter_id.replace(':', '/')}", headers=AUTH)
    assert shown.status_code == 200, shown.text
    assert shown.json()["value_json"] is None
    assert shown.json()["value_text"] == nested.decode()
    assert base64.b64decode(shown.json()["value_base64"]) == nested


READ_TOKEN = "dlq-read-only-token-for-tests"


async def test_payloads_need_a_token_and_a_read_only_one_cannot_replay(
    kafka_settings: KafkaSettings,
) -> None:
    """Dead-letter bodies are sensitive: reading one (or a replay job's results) needs the API
    token or the read-only token; the read-only token cannot replay. Health stays open."""
    settings = dlq_settings(kafka_settings, topic_names(), read_token=READ_TOKEN)
    async with running(settings) as dlq:
        now = int(time.time() * 1000)
        (letter_id,) = await dlq.write(
            [letter(b"{bad", ErrorType.MALFORMED_JSON, offset=1, at_ms=now)]
        )
        path = f"/dlq/messages/{letter_id.replace(':', '/')}"
        reader = {"Authorization": f"Bearer {READ_TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            for denied in (path, "/dlq/replays/any"):
                refused = await dlq.client.get(denied, headers=headers)
                assert refused.status_code == 401, (denied, headers)
                assert "bearer token" in refused.json()["detail"]
                assert "value_base64" not in refused.text
        for headers in (AUTH, reader):
            shown = await dlq.client.get(path, headers=headers)
            assert shown.status_code == 200
            assert base64.b64decode(shown.json()["value_base64"]) == b"{bad"
        body = {"ids": [letter_id], "background": False}
        assert (await dlq.client.post("/dlq/replay", json=body, headers=reader)).status_code == 401
        for open_path in ("/healthz", "/readyz", "/metrics", "/dlq/stats"):
            assert (await dlq.client.get(open_path)).status_code == 200, open_path


async def test_stats_count_exactly(dlq: DlqEnv) -> None:
    empty = (await dlq.client.get("/dlq/stats")).json()
    assert empty["total"] == 0
    assert empty["oldest"] is None

    now = int(time.time() * 1000)
    old = mixed_letters(8, now - 3_600_000)  # an hour ago: outside the recent window
    recent = mixed_letters(5, now - 10_000)
    old_ids = await dlq.write(old)
    recent_ids = await dlq.write(recent)
    stats = (await dlq.client.get("/dlq/stats")).json()
    assert stats["total"] == 13
    assert stats["unresolved"] == 13
    assert stats["replayed"] == 0
    expected = {t.value: 0 for t in ErrorType}
    for d in old + recent:
        expected[d.error_type.value] += 1
    assert {t: c["total"] for t, c in stats["by_error_type"].items()} == expected
    assert stats["oldest"]["id"] == old_ids[0]
    assert stats["newest"]["id"] == recent_ids[-1]
    assert stats["oldest_unresolved"]["id"] == old_ids[0]
    assert stats["recent_count"] == 5
    assert stats["recent_rate_per_s"] == round(5 / 300, 3)


async def test_records_that_are_not_dead_letters_are_counted_not_listed(dlq: DlqEnv) -> None:
    from iotpipe import kafka

    producer = kafka.producer(dlq.kafka)
    await producer.start()
    try:
        await producer.send_and_wait(dlq.kafka.dlq_topic, b"stray", key=b"x")
    finally:
        await producer.stop()
    stats = (await dlq.client.get("/dlq/stats")).json()
    assert stats["unreadable"] == 1
    assert stats["total"] == 0
    assert (await dlq.client.get("/dlq/messages")).json()["items"] == []
