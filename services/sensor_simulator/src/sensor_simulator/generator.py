"""Synthetic readings, a block at a time, with counted injections.

The hot path is vectorised: one block draws its noise, injection choices and
event times with numpy, formats every value with a single ``orjson.dumps`` of
the block, and fills a per-sensor JSON template (precomputed with orjson, so
the bytes are exactly what ``SensorEvent.to_json`` would write). Only the rare
injected records take a slower path.

Sensors report round-robin: slot ``k`` belongs to sensor ``k % N`` and lies in
round ``k // N``. All readings of one round share an event time and successive
rounds are at least 1 ms apart, so ``(sensor_id, timestamp)`` never repeats.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final

import numpy as np
import orjson

from iotpipe.contract import REQUIRED_FIELDS, SCHEMA_VERSION, SENSOR_TYPES, SensorEvent
from sensor_simulator.config import Injections, MalformedKind, RunConfig
from sensor_simulator.profiles import Fleet

INJECTED_HEADER: Final = "iotpipe-injected"
"""Kafka header on every injected record: ``anomaly``, ``late`` or ``malformed:<kind>``."""

Header = tuple[str, bytes]
Clock = Callable[[], float]
NO_HEADERS: Final[list[Header]] = []
ANOMALY: Final = "anomaly"
LATE: Final = "late"
UNKNOWN_SENSOR_TYPE: Final = "radiation"
"""Not a :class:`~iotpipe.contract.SensorType`: makes a record out of contract."""


def injected_headers(kind: str) -> list[Header]:
    return [(INJECTED_HEADER, kind.encode())]


def malformed_label(kind: MalformedKind) -> str:
    return f"malformed:{kind.value}"


def event_id_prefix(rng: np.random.Generator) -> str:
    """24 random-looking characters of a version-4 UUID; the run's counter fills the rest."""
    text = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    return text[:24]


class Timestamps:
    """Millisecond event times as the contract's ISO strings, cached per second."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def format(self, ms: int) -> bytes:
        seconds, millis = divmod(ms, 1000)
        prefix = self._seconds.get(seconds)
        if prefix is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._seconds[seconds] = prefix
        return f"{prefix}.{millis:03d}Z".encode()


_PLACEHOLDER = "\x01{}\x01"


def _template(fields: dict[str, object], prefix: str) -> bytes:
    """``fields`` as wire JSON with %-slots for the id counter, timestamp and value."""
    document = {
        "event_id": _PLACEHOLDER.format("E"),
        **fields,
        "timestamp": _PLACEHOLDER.format("T"),
        "value": _PLACEHOLDER.format("V"),
        "schema_version": SCHEMA_VERSION,
    }
    ordered = {name: document[name] for name in SensorEvent.model_fields}
    raw = orjson.dumps(ordered).replace(b"%", b"%%")
    slot = '"\\u0001{}\\u0001"'
    return (
        raw.replace(slot.format("E").encode(), f'"{prefix}%012x"'.encode())
        .replace(slot.format("T").encode(), b'"%s"')
        .replace(slot.format("V").encode(), b"%s")
    )


@dataclass
class Block:
    """Records ready for Kafka, with what was injected into them."""

    ranges: list[tuple[int, int, int]]
    """(partition, start, end): records are grouped by partition, in slot order within one."""
    keys: list[bytes]
    values: list[bytes]
    headers: list[list[Header]]
    labels: list[str]
    """Sensor type per record (the ``events_produced_total`` label)."""
    timestamp_ms: int
    slots: int
    """Slots consumed, including those of silent (dropped-out) sensors."""
    anomalies: Counter[str] = field(default_factory=Counter)
    """Per sensor type."""
    malformed: Counter[str] = field(default_factory=Counter)
    """Per :class:`MalformedKind` value."""
    late: int = 0
    dropped: int = 0
    truth: list[dict[str, object]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


class Generator:
    """Makes the readings of one run; ``block(n)`` returns the next ``n`` slots' records."""

    def __init__(
        self,
        config: RunConfig,
        partition: Callable[[bytes], int] | None = None,
        *,
        now_ms: int = 0,
        clock: Clock = time.monotonic,
    ) -> None:
        """``clock`` (seconds) paces dropouts: wall time by default; a benchmark that
        generates faster than real time can pass event time instead."""
        self.rng = np.random.default_rng(config.seed)
        self.clock = clock
        self.fleet = Fleet.build(
            config.sensors, config.sensor_types, config.locations, self.rng, config.sensor_prefix
        )
        count = len(self.fleet)
        self.injections: Injections = config
        self.prefix = event_id_prefix(self.rng)
        self.keys = [sensor_id.encode() for sensor_id in self.fleet.ids]
        self.partition_of = [partition(key) if partition else 0 for key in self.keys]
        """Each sensor's partition (by key)."""
        self.type_names = [t.value for t in self.fleet.types]
        self.templates = [
            _template(
                {
                    "sensor_id": self.fleet.ids[i],
                    "sensor_type": self.fleet.types[i].value,
                    "unit": SENSOR_TYPES[self.fleet.types[i]].unit,
                    "location": self.fleet.locations[i],
                },
                self.prefix,
            )
            for i in range(count)
        ]
        self.slot = 0
        """Next slot (sensor ``slot % N``, round ``slot // N``)."""
        self.timestamps = Timestamps()
        self._round_ms = 1.0
        self._anchor_round = 0
        self._anchor_ms = now_ms or int(time.time() * 1000)
        self.silent = np.zeros(count, dtype=bool)
        self._next_dropout = 0.0
        self._dropout_until = 0.0
        self.dropouts = 0
        self.drift = np.zeros(count)
        """Each sensor's current level offset (see :meth:`_drift`)."""
        self._drift_logged = False
        self._anomaly_headers = injected_headers(ANOMALY)
        self._late_headers = injected_headers(LATE)
        self._malformed_headers = {k: injected_headers(malformed_label(k)) for k in MalformedKind}

    # -- time -------------------------------------------------------------------------------

    def set_rate(self, rate: float | None, now_ms: int) -> None:
        """Space rounds so that event time follows wall time at ``rate`` (1 ms if unpaced)."""
        current = self._round_time(self.slot // len(self.fleet))
        self._anchor_round = self.slot // len(self.fleet)
        self._anchor_ms = max(now_ms, current)
        self._round_ms = max(1.0, len(self.fleet) * 1000 / rate) if rate else 1.0

    def _round_time(self, round_: int) -> int:
        return int(self._anchor_ms + (round_ - self._anchor_round) * self._round_ms)

    def _catch_up(self, now_ms: int) -> None:
        """Re-anchor if event time fell behind wall time (never moves it backwards)."""
        first = self.slot // len(self.fleet)
        current = self._round_time(first)
        if now_ms - current > 1000:
            self._anchor_round, self._anchor_ms = first, now_ms

    # -- dropout ----------------------------------------------------------------------------

    def _update_dropout(self, now: float) -> list[dict[str, object]]:
        config = self.injections
        if config.dropout_fraction <= 0:
            self.silent[:] = False
            return []
        if now >= self._dropout_until and self.silent.any():
            self.silent[:] = False
        if now < self._next_dropout:
            return []
        self._next_dropout = now + config.dropout_interval_seconds
        self._dropout_until = now + config.dropout_seconds
        count = round(config.dropout_fraction * len(self.fleet))
        chosen = self.rng.choice(len(self.fleet), size=count, replace=False)
        self.silent[:] = False
        self.silent[chosen] = True
        self.dropouts += count
        wall = time.time()
        return [
            {
                "kind": "dropout",
                "sensor_id": self.fleet.ids[i],
                "from": wall,
                "until": wall + config.dropout_seconds,
            }
            for i in chosen.tolist()
        ]

    # -- drift ------------------------------------------------------------------------------

    def _drift(self, start: int, slots: int) -> np.ndarray:
        """Each slot's level offset: per sensor an AR(1) (Ornstein-Uhlenbeck) walk with
        stationary stddev ``drift_sigma`` noise sigmas and time constant ``drift_readings``
        readings, advanced once per slot, silent ones included (the process goes on)."""
        config = self.injections
        count = len(self.fleet)
        phi = float(np.exp(-1.0 / config.drift_readings))
        positions = np.arange(start, start + slots, dtype=np.int64)
        sensor = positions % count
        steps = self.rng.standard_normal(slots) * (
            config.drift_sigma * self.fleet.noise[sensor] * np.sqrt(1 - phi * phi)
        )
        rounds = positions // count
        edges = np.flatnonzero(np.diff(rounds)) + 1
        out = np.empty(slots)
        level = self.drift
        for begin, end in zip([0, *edges.tolist()], [*edges.tolist(), slots], strict=True):
            members = sensor[begin:end]
            level[members] = phi * level[members] + steps[begin:end]
            out[begin:end] = level[members]
        return out

    # -- the block --------------------------------------------------------------------------

    def block(self, slots: int, limit: int | None = None, now_ms: int | None = None) -> Block:
        """The records of the next ``slots`` slots (at most ``limit`` records)."""
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        count = len(self.fleet)
        truth = self._update_dropout(self.clock())
        self._catch_up(now_ms)
        start = self.slot
        positions = np.arange(start, start + slots, dtype=np.int64)
        sensor = positions % count
        keep_index = np.arange(slots)
        dropped = 0
        if self.silent.any():
            keep_index = np.flatnonzero(~self.silent[sensor])
            positions, sensor = positions[keep_index], sensor[keep_index]
            dropped = slots - len(sensor)
        if limit is not None and len(sensor) > limit:
            slots = int(positions[limit]) - start  # up to the first slot beyond the limit
            positions, sensor = positions[:limit], sensor[:limit]
            keep_index = keep_index[:limit]
            dropped = slots - limit
        drift = self._drift(start, slots) if self.injections.drift_sigma > 0 else None
        self.slot = start + slots
        size = len(sensor)
        # Group by partition (stable: a sensor's readings keep their order) so that
        # delivery fills one partition's batch from one contiguous run of records.
        partition = np.asarray(self.partition_of, dtype=np.int64)[sensor]
        order = np.argsort(partition, kind="stable")
        positions, sensor, partition = positions[order], sensor[order], partition[order]
        keep_index = keep_index[order]
        edges = np.cumsum(np.bincount(partition)).tolist()
        # pairwise, not zip: a block whose every sensor is silent has no edges at all
        ranges = [
            (p, begin, end) for p, (begin, end) in enumerate(pairwise([0, *edges])) if end > begin
        ]
        fleet = self.fleet
        config = self.injections

        times = (
            self._anchor_ms + (positions // count - self._anchor_round) * self._round_ms
        ).astype(np.int64)
        noise = fleet.noise[sensor]
        base = fleet.base[sensor]
        if drift is not None:
            base = base + drift[keep_index]
            if not self._drift_logged:
                self._drift_logged = True
                truth.append(
                    {
                        "kind": "drift",
                        "sigma": config.drift_sigma,
                        "readings": config.drift_readings,
                        "sensors": count,
                    }
                )
        values = base + noise * self.rng.standard_normal(size)

        choice = self.rng.random(size)
        cut_anomaly = config.anomaly_rate
        cut_malformed = cut_anomaly + config.malformed_rate
        cut_late = cut_malformed + config.late_rate
        anomaly = choice < cut_anomaly
        if anomaly.any():
            spike = config.anomaly_sigma * (1 + 0.5 * self.rng.random(size)) * noise
            values = np.where(anomaly, base + fleet.spike_direction[sensor] * spike, values)
        late = (choice >= cut_malformed) & (choice < cut_late)
        if late.any():
            most = int(config.late_max_minutes * 60_000)
            behind = self.rng.integers(min(1000, most), most + 1, size)
            times = np.where(late, times - behind, times)
        rounded = np.round(np.clip(values, fleet.low[sensor], fleet.high[sensor]), 3)

        sensors = sensor.tolist()
        ids = positions.tolist()  # the slot number is the event id's counter: unique per run
        fmt = self.timestamps.format
        stamps = {ms: fmt(ms) for ms in set(times.tolist())}
        templates = self.templates
        encoded = [
            templates[s] % (n, stamps[ms], v)
            for s, n, ms, v in zip(
                sensors,
                ids,
                times.tolist(),
                orjson.dumps(rounded.tolist())[1:-1].split(b",") if size else [],
                strict=True,
            )
        ]
        keys = self.keys
        block = Block(
            ranges=ranges,
            keys=[keys[s] for s in sensors],
            values=encoded,
            headers=[NO_HEADERS] * size,
            labels=[self.type_names[s] for s in sensors],
            timestamp_ms=now_ms,
            slots=slots,
            dropped=dropped,
            truth=truth,
        )
        if choice.size and float(choice.min()) < cut_late:
            self._inject(block, choice, cut_anomaly, cut_malformed, cut_late, ids)
        return block

    def _inject(
        self,
        block: Block,
        choice: np.ndarray,
        cut_anomaly: float,
        cut_malformed: float,
        cut_late: float,
        ids: list[int],
    ) -> None:
        kinds = self.injections.malformed_kinds
        for i in np.flatnonzero(choice < cut_late).tolist():
            u = float(choice[i])
            event_id = f"{self.prefix}{ids[i]:012x}"
            sensor_type = block.labels[i]
            if u < cut_anomaly:
                kind = ANOMALY
                block.anomalies[sensor_type] += 1
                block.headers[i] = self._anomaly_headers
            elif u < cut_malformed:
                malformed = kinds[int(self.rng.integers(len(kinds)))]
                kind = malformed_label(malformed)
                block.values[i] = corrupt(block.values[i], malformed, self.rng)
                block.malformed[malformed.value] += 1
                block.headers[i] = self._malformed_headers[malformed]
            else:
                kind = LATE
                block.late += 1
                block.headers[i] = self._late_headers
            block.truth.append(
                {"event_id": event_id, "sensor_id": block.keys[i].decode(), "kind": kind}
            )


def corrupt(value: bytes, kind: MalformedKind, rng: np.random.Generator) -> bytes:
    """Break a valid record the way ``kind`` says (see :class:`MalformedKind`)."""
    if kind is MalformedKind.BROKEN_JSON:
        return value[: max(value.index(b'"sensor_id"'), len(value) * 2 // 3)]
    document = orjson.loads(value)
    if kind is MalformedKind.WRONG_TYPE:
        document["value"] = "n/a"
    elif kind is MalformedKind.MISSING_FIELD:
        optional = [name for name in REQUIRED_FIELDS if name != "event_id"]
        del document[optional[int(rng.integers(len(optional)))]]
    elif rng.random() < 0.5:
        document["sensor_type"] = UNKNOWN_SENSOR_TYPE
    else:
        units = sorted({spec.unit for spec in SENSOR_TYPES.values()} - {document["unit"]})
        document["unit"] = units[int(rng.integers(len(units)))]
    return orjson.dumps(document)
