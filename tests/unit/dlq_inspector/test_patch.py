"""JSON Merge Patch: the RFC 7386 appendix A examples, and what replays do with bad bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from dlq_inspector.patch import merge_patch
from dlq_inspector.replay import patched_value

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


def test_no_patch_keeps_the_original_bytes() -> None:
    assert patched_value(b"\xff not json", None) == b"\xff not json"
    assert patched_value(b'{"a": 1}', {}) == b'{"a": 1}'


def test_a_patch_applies_to_a_json_object() -> None:
    assert orjson.loads(
        patched_value(b'{"unit": "K", "x": 1}', {"unit": "celsius", "x": None})
    ) == {"unit": "celsius"}


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
        patched_value(raw, {"unit": "g"})
    assert caught.value.error_type is error_type
    assert says in caught.value.detail
