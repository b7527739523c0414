"""JSON Merge Patch: the RFC 7386 appendix A examples, and what replays do with bad bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from dlq_inspector.patch import merge_patch
from dlq_inspector.replay import validated

from iotpipe.contract import ContractViolation, ErrorType

RFC_7386_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386_EXAMPLES)
def test_rfc_7386_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_the_target_is_not_modified() -> None:
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


EVENT = {
    "event_id": "6513270e-269e-0d37-f2a7-4de452e6b438",
    "sensor_id": "sensor-0001",
    "sensor_type": "temperature",
    "timestamp": "2026-11-26T05:34:59.033Z",
    "value": 21.5,
    "unit": "kelvin",
    "location": "site-0",
}


def test_no_patch_keeps_the_original_bytes() -> None:
    raw = orjson.dumps(EVENT | {"unit": "celsius"}, option=orjson.OPT_INDENT_2)
    event, value = validated(raw, None)
    assert value is raw
    assert event.sensor_id == "sensor-0001"
    with pytest.raises(ContractViolation) as caught:
        validated(b"\xff not json", {})
    assert caught.value.error_type is ErrorType.MALFORMED_JSON


def test_a_patch_applies_to_a_json_object_and_the_result_is_validated() -> None:
    event, value = validated(orjson.dumps(EVENT | {"x": 1}), {"unit": "celsius", "x": None})
    assert orjson.loads(value) == EVENT | {"unit": "celsius"}
    assert event.unit == "celsius"
    with pytest.raises(ContractViolation) as caught:
        validated(orjson.dumps(EVENT), {"unit": "fahrenheit"})
    assert caught.value.error_type is ErrorType.OUT_OF_CONTRACT
    assert "fahrenheit" in caught.value.detail


def test_a_patch_that_cannot_be_encoded_is_refused_not_raised() -> None:
    with pytest.raises(ContractViolation) as caught:
        validated(orjson.dumps(EVENT), {"unit": "celsius", "value": 2**70})
    assert caught.value.error_type is ErrorType.SCHEMA_MISMATCH
    assert "64-bit" in caught.value.detail


@pytest.mark.parametrize(
    ("raw", "error_type", "says"),
    [
        (b'{"sensor_id": "s-1", "va', ErrorType.MALFORMED_JSON, "not JSON"),
        (b"\xff\xfe", ErrorType.MALFORMED_JSON, "not JSON"),
        (b"[1, 2]", ErrorType.SCHEMA_MISMATCH, "JSON list, not an object"),
        (b'"text"', ErrorType.SCHEMA_MISMATCH, "JSON str"),
    ],
)
def test_a_patch_cannot_fix_what_is_not_an_object(
    raw: bytes, error_type: ErrorType, says: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        validated(raw, {"unit": "g"})
    assert caught.value.error_type is error_type
    assert says in caught.value.detail
