"""CSV replay parsing: columns, values, pacing offsets, and the folder fence."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from sensor_simulator.replay import (
    INVALID_LABEL,
    ReplayError,
    encode,
    rows_from_bytes,
    rows_from_path,
)

from iotpipe.contract import ContractViolation, ErrorType, parse_event

CSV = (
    "sensor_id,sensor_type,timestamp,value,unit,location\n"
    "t-1,temperature,2026-01-01T00:00:00Z,21.5,celsius,plant-a\n"
    "h-1,humidity,2026-01-01T00:00:02.500Z,40,percent,plant-b\n"
    "t-1,temperature,2026-01-01T00:00:01Z,n/a,celsius,plant-a\n"
    "x-1,radiation,not-a-time,1,sievert,plant-c\n"
)
EVENT_ID = "7353cc28-4fe0-446e-aa68-000000000001"


def test_rows_become_events_with_the_rows_own_event_time():
    rows = rows_from_bytes(CSV.encode())
    assert [r.key for r in rows] == [b"t-1", b"h-1", b"t-1", b"x-1"]
    first = parse_event(encode(rows[0], EVENT_ID))
    assert (first.value, first.unit, first.location) == (21.5, "celsius", "plant-a")
    assert first.timestamp.isoformat() == "2026-01-01T00:00:00+00:00"
    assert str(first.event_id) == EVENT_ID
    assert parse_event(encode(rows[1], EVENT_ID)).value == 40.0


def test_rows_that_break_the_contract_are_sent_for_the_dlq_to_classify():
    rows = rows_from_bytes(CSV.encode())
    with pytest.raises(ContractViolation) as wrong_type:
        parse_event(encode(rows[2], EVENT_ID))
    assert wrong_type.value.error_type is ErrorType.SCHEMA_MISMATCH
    assert orjson.loads(encode(rows[2], EVENT_ID))["value"] == "n/a"
    with pytest.raises(ContractViolation) as unknown:
        parse_event(encode(rows[3], EVENT_ID))
    assert unknown.value.error_type is ErrorType.OUT_OF_CONTRACT
    assert rows[3].label == INVALID_LABEL


def test_offsets_follow_event_time_and_never_go_back():
    rows = rows_from_bytes(CSV.encode())
    assert [r.offset_s for r in rows] == [0.0, 2.5, 2.5, 2.5]


def test_missing_columns_are_named():
    with pytest.raises(ReplayError, match="lacks column\\(s\\) unit, location"):
        rows_from_bytes(b"sensor_id,sensor_type,timestamp,value\ns,temperature,x,1\n")


def test_empty_and_binary_files_are_refused():
    with pytest.raises(ReplayError, match="no rows"):
        rows_from_bytes(b"sensor_id,sensor_type,timestamp,value,unit,location\n")
    with pytest.raises(ReplayError, match="not UTF-8"):
        rows_from_bytes(b"\xff\xfe\x00garbage")


def test_paths_stay_inside_the_replay_folder(tmp_path: Path):
    (tmp_path / "ok.csv").write_text(CSV)
    (tmp_path.parent / "secret.csv").write_text(CSV)
    resolved, rows = rows_from_path("ok.csv", tmp_path)
    assert resolved == tmp_path / "ok.csv"
    assert len(rows) == 4
    with pytest.raises(ReplayError, match="outside the replay folder"):
        rows_from_path("../secret.csv", tmp_path)
    with pytest.raises(ReplayError, match="outside the replay folder"):
        rows_from_path(str(tmp_path.parent / "secret.csv"), tmp_path)
    with pytest.raises(ReplayError, match="no file"):
        rows_from_path("nope.csv", tmp_path)
    with pytest.raises(ReplayError, match="disabled"):
        rows_from_path("ok.csv", None)
