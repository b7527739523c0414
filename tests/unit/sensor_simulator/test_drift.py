"""Drift injection: a slow AR(1) wander of each sensor's level, recorded in the ground truth."""

from __future__ import annotations

import numpy as np
import orjson
from sensor_simulator.config import RunConfig
from sensor_simulator.generator import Generator

NOW_MS = 1_790_000_000_000


def readings(config: RunConfig, slots: int, block: int) -> np.ndarray:
    generator = Generator(config, now_ms=NOW_MS)
    values: list[float] = []
    truth: list[dict[str, object]] = []
    while generator.slot < slots:
        out = generator.block(block, now_ms=NOW_MS)
        values += [orjson.loads(v)["value"] for v in out.values]
        truth += out.truth
    assert [t for t in truth if t["kind"] == "drift"] == (
        [{"kind": "drift", "sigma": config.drift_sigma, "readings": config.drift_readings,
          "sensors": config.sensors}]
        if config.drift_sigma
        else []
    )  # fmt: skip
    return np.array(values)


def test_drift_wanders_slowly_with_the_configured_size() -> None:
    config = RunConfig(sensors=1, seed=5, rate=None, drift_sigma=4, drift_readings=50)
    x = readings(config, 40_000, 4_000)
    noise = 0.5  # temperature
    # total variance = noise² (1 + sigma²); one step changes the level only a little
    assert 0.8 * noise * np.sqrt(17) < np.std(x) < 1.2 * noise * np.sqrt(17)
    assert np.std(np.diff(x)) < 1.2 * noise * np.sqrt(2 + 16 * 2 / 50)


def test_drift_is_off_by_default() -> None:
    plain = RunConfig(sensors=3, seed=9, rate=None)
    x = readings(plain, 3_000, 3_000)
    assert 0.4 < np.std(x[0::3]) < 0.6  # temperature noise only: no wander
