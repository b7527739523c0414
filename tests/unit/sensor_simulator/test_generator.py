"""The generator: valid events by the contract, injections exactly as counted and marked."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_simulator.config import MalformedKind, RunConfig
from sensor_simulator.generator import INJECTED_HEADER, Block, Generator
from sensor_simulator.profiles import PROFILES

from iotpipe.contract import SENSOR_TYPES, ContractViolation, ErrorType, SensorType, parse_event

NOW_MS = 1_780_000_000_000


def injected(block: Block) -> list[str]:
    return [dict(h)[INJECTED_HEADER].decode() for h in block.headers if h]


def records(block: Block) -> list[tuple[int, bytes, bytes, str]]:
    """(partition, key, value, label) in block order."""
    out = []
    for partition, begin, end in block.ranges:
        for i in range(begin, end):
            out.append((partition, block.keys[i], block.values[i], block.labels[i]))
    return out


@settings(max_examples=25, deadline=None)
@given(
    sensors=st.integers(1, 300),
    types=st.lists(st.sampled_from(list(SensorType)), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 2**32),
    slots=st.integers(1, 2_000),
)
def test_clean_events_satisfy_the_contract(sensors, types, seed, slots):
    config = RunConfig(sensors=sensors, sensor_types=types, seed=seed, rate=None)
    generator = Generator(config, lambda key: int(key[-1:]) % 3, now_ms=NOW_MS)
    block = generator.block(slots, now_ms=NOW_MS)
    assert len(block) == slots
    assert not injected(block)
    for partition, key, value, label in records(block):
        event = parse_event(value)
        assert event.sensor_id in generator.fleet.ids
        assert key == event.sensor_id.encode()
        assert partition == int(event.sensor_id[-1]) % 3
        assert event.sensor_type in types
        assert label == event.sensor_type.value
        assert event.unit == SENSOR_TYPES[event.sensor_type].unit
        assert event.spec.in_range(event.value)
        assert orjson.loads(value) == orjson.loads(event.to_json())


def test_values_follow_each_sensors_profile():
    config = RunConfig(sensors=4, seed=3, rate=None)
    generator = Generator(config, now_ms=NOW_MS)
    readings: dict[str, list[float]] = {}
    for _ in range(50):
        for _, _, value, _ in records(generator.block(400, now_ms=NOW_MS)):
            event = parse_event(value)
            readings.setdefault(event.sensor_type.value, []).append(event.value)
    for sensor_type, values in readings.items():
        profile = PROFILES[SensorType(sensor_type)]
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        assert sd == pytest.approx(profile.noise, rel=0.1)
        assert abs(mean - profile.base) < 5 * profile.spread


def test_event_time_never_repeats_for_a_sensor_even_when_rate_changes():
    generator = Generator(RunConfig(sensors=7, seed=1, rate=None), now_ms=NOW_MS)
    seen: set[tuple[str, str]] = set()
    for step, rate in enumerate([None, 7000.0, 50.0, None, 7000.0]):
        generator.set_rate(rate, NOW_MS + step)
        for _ in range(5):
            for _, _, value, _ in records(generator.block(333, now_ms=NOW_MS + step)):
                document = orjson.loads(value)
                pair = (document["sensor_id"], document["timestamp"])
                assert pair not in seen
                seen.add(pair)
    assert len(seen) == 5 * 5 * 333


def test_paced_event_time_follows_the_schedule():
    generator = Generator(RunConfig(sensors=10, seed=1, rate=100), now_ms=NOW_MS)
    generator.set_rate(100, NOW_MS)  # 10 rounds/s: 100 ms per round
    block = generator.block(100, now_ms=NOW_MS)
    times = sorted({orjson.loads(v)["timestamp"] for v in block.values})
    first = datetime.fromtimestamp(NOW_MS / 1000, UTC)
    assert times[0] == first.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert len(times) == 10
    last = datetime.fromisoformat(times[-1].replace("Z", "+00:00"))
    assert last - first == timedelta(milliseconds=900)


def test_injections_are_counted_marked_and_logged_exactly():
    config = RunConfig(
        sensors=50, seed=11, rate=None, anomaly_rate=0.05, malformed_rate=0.05, late_rate=0.05
    )
    generator = Generator(config, now_ms=NOW_MS)
    anomalies: Counter[str] = Counter()
    malformed: Counter[str] = Counter()
    late = 0
    marks: Counter[str] = Counter()
    truth: list[dict[str, object]] = []
    for _ in range(20):
        block = generator.block(1_000, now_ms=NOW_MS)
        anomalies += block.anomalies
        malformed += block.malformed
        late += block.late
        marks.update(injected(block))
        truth += block.truth
    assert sum(anomalies.values()) == marks["anomaly"] > 700
    assert late == marks["late"] > 700
    for kind in MalformedKind:
        assert malformed[kind.value] == marks[f"malformed:{kind.value}"] > 100
    assert Counter(t["kind"] for t in truth) == marks
    assert len({t["event_id"] for t in truth}) == len(truth)


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        (MalformedKind.BROKEN_JSON, ErrorType.MALFORMED_JSON),
        (MalformedKind.WRONG_TYPE, ErrorType.SCHEMA_MISMATCH),
        (MalformedKind.MISSING_FIELD, ErrorType.MISSING_REQUIRED),
        (MalformedKind.OUT_OF_CONTRACT, ErrorType.OUT_OF_CONTRACT),
    ],
)
def test_each_malformed_kind_is_classified_as_the_dlq_would(kind, error_type):
    config = RunConfig(sensors=20, seed=5, rate=None, malformed_rate=1.0, malformed_kinds=[kind])
    block = Generator(config, now_ms=NOW_MS).block(400, now_ms=NOW_MS)
    assert block.malformed == {kind.value: 400}
    for value in block.values:
        with pytest.raises(ContractViolation) as caught:
            parse_event(value)
        assert caught.value.error_type is error_type, caught.value.detail


def test_anomalies_are_spikes_of_several_sigmas():
    config = RunConfig(sensors=8, seed=2, rate=None, anomaly_rate=1.0, anomaly_sigma=6)
    generator = Generator(config, now_ms=NOW_MS)
    block = generator.block(800, now_ms=NOW_MS)
    fleet = generator.fleet
    for value in block.values:
        event = parse_event(value)
        i = fleet.ids.index(event.sensor_id)
        assert abs(event.value - fleet.base[i]) >= 6 * fleet.noise[i] - 1e-3
        assert event.spec.in_range(event.value)


def test_late_events_are_in_the_past_by_at_most_the_limit():
    config = RunConfig(sensors=8, seed=2, rate=None, late_rate=1.0, late_max_minutes=5)
    block = Generator(config, now_ms=NOW_MS).block(500, now_ms=NOW_MS)
    now = datetime.fromtimestamp(NOW_MS / 1000, UTC)
    for value in block.values:
        behind = now - parse_event(value).timestamp
        assert timedelta(seconds=1) <= behind <= timedelta(minutes=5)


def test_dropout_silences_sensors_and_counts_the_missing_readings():
    config = RunConfig(
        sensors=100, seed=4, rate=None, dropout_fraction=0.2, dropout_seconds=60,
        dropout_interval_seconds=60,
    )  # fmt: skip
    generator = Generator(config, now_ms=NOW_MS)
    block = generator.block(1_000, now_ms=NOW_MS)
    silent = {t["sensor_id"] for t in block.truth if t["kind"] == "dropout"}
    assert len(silent) == 20 == generator.dropouts
    assert block.dropped == 200
    assert len(block) == 800
    assert not silent & {k.decode() for k in block.keys}


def test_limit_stops_at_exactly_that_many_events():
    config = RunConfig(sensors=10, seed=4, rate=None, dropout_fraction=0.5)
    generator = Generator(config, now_ms=NOW_MS)
    block = generator.block(1_000, limit=37, now_ms=NOW_MS)
    assert len(block) == 37
    assert block.slots == 37 + block.dropped
    assert generator.slot == block.slots


def test_same_seed_same_readings():
    def values() -> list[bytes]:
        config = RunConfig(sensors=5, seed=9, rate=None, anomaly_rate=0.1, malformed_rate=0.1)
        return Generator(config, now_ms=NOW_MS).block(200, now_ms=NOW_MS).values

    assert values() == values()


def test_a_block_in_which_every_sensor_is_silent_is_empty_not_an_error():
    config = RunConfig(sensors=5, seed=3, rate=None, dropout_fraction=1.0, dropout_seconds=60)
    generator = Generator(config, now_ms=NOW_MS)  # the dropout silences the whole fleet
    block = generator.block(5, now_ms=NOW_MS)
    assert (len(block), block.ranges, block.slots) == (0, [], 5)
