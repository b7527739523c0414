"""How each sensor type behaves: a typical value and its noise.

Units and physical bounds are the contract's (:data:`iotpipe.contract.SENSOR_TYPES`);
this module only adds what a simulation needs on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from iotpipe.contract import SENSOR_TYPES, SensorType, SensorTypeSpec


@dataclass(frozen=True, slots=True)
class SensorProfile:
    base: float
    """Typical reading of the type (in the contract's unit)."""
    noise: float
    """Standard deviation of one sensor's readings around its own base."""
    spread: float
    """Standard deviation of the sensors' bases around ``base`` (sensors differ)."""

    def validate(self, spec: SensorTypeSpec) -> None:
        if not spec.in_range(self.base):
            raise ValueError(f"profile base {self.base} is outside {spec}")


PROFILES: Final = MappingProxyType(
    {
        SensorType.TEMPERATURE: SensorProfile(base=22.0, noise=0.5, spread=3.0),
        SensorType.HUMIDITY: SensorProfile(base=45.0, noise=1.5, spread=8.0),
        SensorType.PRESSURE: SensorProfile(base=1013.25, noise=1.2, spread=6.0),
        SensorType.VIBRATION: SensorProfile(base=0.6, noise=0.05, spread=0.15),
    }
)
for _type, _profile in PROFILES.items():
    _profile.validate(SENSOR_TYPES[_type])


@dataclass(frozen=True)
class Fleet:
    """The simulated sensors of a run, as arrays indexed by sensor number."""

    ids: list[str]
    types: list[SensorType]
    locations: list[str]
    base: np.ndarray
    noise: np.ndarray
    low: np.ndarray
    high: np.ndarray
    spike_direction: np.ndarray
    """+1 or -1: anomalies go towards the farther bound, so clamping keeps them spikes."""

    @classmethod
    def build(
        cls,
        count: int,
        types: list[SensorType],
        locations: list[str],
        rng: np.random.Generator,
        prefix: str = "sensor",
    ) -> Fleet:
        kinds = [types[i % len(types)] for i in range(count)]
        profiles = [PROFILES[t] for t in kinds]
        specs = [SENSOR_TYPES[t] for t in kinds]
        low = np.array([s.min_value for s in specs])
        high = np.array([s.max_value for s in specs])
        noise = np.array([p.noise for p in profiles])
        centre = np.array([p.base for p in profiles])
        spread = np.array([p.spread for p in profiles])
        # Keep each sensor's base well inside the bounds: noise and spikes need the room.
        margin = np.minimum(10 * noise, (high - low) / 4)
        base = np.clip(centre + spread * rng.standard_normal(count), low + margin, high - margin)
        direction = np.where(high - base >= base - low, 1.0, -1.0)
        width = len(str(count - 1))
        return cls(
            ids=[f"{prefix}-{i:0{max(width, 5)}d}" for i in range(count)],
            types=kinds,
            locations=[locations[i % len(locations)] for i in range(count)],
            base=base,
            noise=noise,
            low=low,
            high=high,
            spike_direction=direction,
        )

    def __len__(self) -> int:
        return len(self.ids)
