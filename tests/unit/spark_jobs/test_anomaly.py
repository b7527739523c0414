"""Anomaly scoring pieces without Spark: the erfc approximation, the suppression rule,
the settings, and the learned detector's deterministic versioning."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import orjson
import pytest
from pydantic import ValidationError
from spark_jobs.anomaly import FEATURES, erfc_numpy, suppress
from spark_jobs.detector import ModelInfo, ModelStore, TamperedModel, fit, score_frame
from spark_jobs.medallion import MedallionSettings

from iotpipe.contract import SensorType


def test_erfc_matches_the_exact_function_to_its_stated_relative_error() -> None:
    x = np.linspace(0.0, 8.0, 2001)
    exact = np.array([math.erfc(v) for v in x])
    assert np.max(np.abs(erfc_numpy(x) / exact - 1)) < 1.2e-7


def test_default_threshold_is_a_five_sigma_reading() -> None:
    threshold = MedallionSettings().anomaly_default_threshold
    assert 1 - math.erfc(4.8 / math.sqrt(2)) < threshold < 1 - math.erfc(4.95 / math.sqrt(2))


@pytest.mark.parametrize(
    ("above", "alerts"),
    [
        ([0, 0, 0, 0, 0, 0], []),  # clean: nothing
        ([0, 0, 1, 0, 0, 0], [2]),  # a spike: one
        ([0, 1, 1, 1, 1, 0], [1]),  # sustained: one, at its start
        ([1, 0, 0, 1, 0, 0], [0]),  # back above within the cooldown (3): same incident
        ([1, 0, 0, 0, 1, 0], [0, 4]),  # after 3 readings below: a new incident
        ([0, 1, 0, 1, 0, 1], [1]),  # flickering: one
    ],
)
def test_suppression_raises_one_alert_per_incident(above: list[int], alerts: list[int]) -> None:
    sensor = np.zeros(len(above), dtype=int)
    assert np.flatnonzero(suppress(np.array(above, bool), sensor, 3)).tolist() == alerts


def test_suppression_does_not_carry_over_from_another_sensor() -> None:
    above = np.array([0, 0, 1, 1, 0, 0], bool)
    sensor = np.array([0, 0, 0, 1, 1, 1])
    assert np.flatnonzero(suppress(above, sensor, 10)).tolist() == [2, 3]


def test_anomaly_settings_are_per_type_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDALLION_ANOMALY_HISTORY", '{"vibration": 60}')
    monkeypatch.setenv("MEDALLION_ANOMALY_THRESHOLD", '{"pressure": 0.9999}')
    settings = MedallionSettings()
    assert settings.anomaly_history == {SensorType.VIBRATION: 60}
    assert settings.anomaly_threshold == {SensorType.PRESSURE: 0.9999}
    monkeypatch.setenv("MEDALLION_ANOMALY_MIN_HISTORY", "45")
    with pytest.raises(ValidationError, match="anomaly_min_history"):
        MedallionSettings()  # 45 > the default history of 30
    monkeypatch.setenv("MEDALLION_ANOMALY_THRESHOLD", '{"pressure": 1.5}')
    with pytest.raises(ValidationError):
        MedallionSettings(anomaly_min_history=20)


def test_history_hours_cover_the_longest_history() -> None:
    # 7,190 readings + a cooldown of 10 at 1 Hz: exactly 2 hours
    assert MedallionSettings(anomaly_history={SensorType.HUMIDITY: 7190}).history.seconds == 7200
    assert MedallionSettings(anomaly_history={SensorType.HUMIDITY: 7191}).history.seconds == 10800


def _features(seed: int, rows: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((rows, len(FEATURES))))


def _info(**changes: object) -> ModelInfo:
    info = {
        "sensor_type": "temperature",
        "window_start": "2026-11-20T00:00:00+00:00",
        "window_end": "2026-11-20T01:00:00+00:00",
        "features": list(FEATURES),
        "trees": 20,
        "max_samples": 256,
        "threshold": 0.78,
        "training_rows": 3000,
        "sklearn_version": "test",
    }
    return ModelInfo(**(info | changes))  # type: ignore[arg-type]


def test_retraining_on_the_same_window_gives_the_same_version_and_bytes(tmp_path: Path) -> None:
    first, first_blob = fit(_features(1), _info())
    again, again_blob = fit(_features(1), _info())
    assert first.version == again.version
    assert first_blob == again_blob
    assert len(first.version) == 16
    other_window, _ = fit(_features(1), _info(window_end="2026-11-20T02:00:00+00:00"))
    other_data, _ = fit(_features(2), _info())
    assert len({first.version, other_window.version, other_data.version}) == 3

    store = ModelStore(str(tmp_path / "_models"))
    folder = store.save(first, first_blob)
    assert store.blob("temperature", first.version) == first_blob
    store.save(again, again_blob)  # idempotent
    assert sorted(p.name for p in Path(folder).iterdir()) == ["meta.json", "model.pkl"]
    loaded = store.latest("temperature")
    assert loaded is not None
    assert loaded.info == first.info
    assert store.latest("humidity") is None
    assert store.detectors(["temperature", "humidity"]).keys() == {"temperature"}


def test_a_model_whose_files_changed_after_training_is_not_unpickled(tmp_path: Path) -> None:
    """Unpickling runs code, so the store loads only bytes that hash, with their metadata,
    to the version LATEST names: a swapped model.pkl, an edited meta.json or a LATEST
    pointing at another folder's files is refused before pickle sees the bytes."""
    detector, blob = fit(_features(1), _info())
    other, other_blob = fit(_features(2), _info())
    store = ModelStore(str(tmp_path / "_models"))
    folder = Path(store.save(detector, blob))
    assert store.latest("temperature") is not None

    class Exploding:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (pytest.fail, ("the tampered pickle was loaded",))

    (folder / "model.pkl").write_bytes(pickle.dumps(Exploding()))
    with pytest.raises(TamperedModel, match=f"model {detector.version} of temperature"):
        store.latest("temperature")
    (folder / "model.pkl").write_bytes(other_blob)  # a real model, just not this one
    with pytest.raises(TamperedModel):
        store.latest("temperature")
    (folder / "model.pkl").write_bytes(blob)
    meta = orjson.loads((folder / "meta.json").read_bytes())
    (folder / "meta.json").write_bytes(orjson.dumps(meta | {"threshold": 0.01}))
    with pytest.raises(TamperedModel):
        store.latest("temperature")
    store.save(other, other_blob, latest=False)
    (folder.parent / "LATEST").write_text(other.version)
    loaded = store.latest("temperature")  # another intact model: loaded
    assert loaded is not None
    assert loaded.info == other.info


def test_detector_scores_outliers_higher_and_skips_rows_it_cannot_score() -> None:
    import pandas as pd

    model, _ = fit(_features(1), _info())
    frame = pd.DataFrame(
        {
            "sensor_type": ["temperature", "temperature", "humidity", "temperature"],
            FEATURES[0]: [0.5, 9.0, 0.5, None],
            FEATURES[1]: [0.5, 9.0, 0.5, 0.5],
            FEATURES[2]: [0.5, 9.0, 0.5, 0.5],
        }
    )
    scores = score_frame(frame, {"temperature": model})
    assert 0 < scores[0] < scores[1] <= 1
    assert np.isnan(scores[2:]).all()  # no humidity model; a missing feature


def test_alert_counts_are_gauges_per_sensor_type() -> None:
    from spark_jobs.bronze_to_silver import push_alert_counts

    registry = push_alert_counts(
        None, {"readings:temperature": 3600, "alerts:temperature": 2, "alerts:humidity": 0}
    )
    value = registry.get_sample_value
    assert value("silver_anomaly_alerts", {"sensor_type": "temperature"}) == 2
    assert value("silver_anomaly_alerts", {"sensor_type": "humidity"}) == 0
    assert value("silver_readings", {"sensor_type": "temperature"}) == 3600


def test_health_is_a_gauge_per_location() -> None:
    from spark_jobs.silver_to_gold import push_health

    registry = push_health(None, {"site-a": 70.0, "site-b": 100.0})
    value = registry.get_sample_value
    assert value("gold_sensor_health_min_pct", {"location": "site-a"}) == 70.0
    assert value("gold_sensor_health_min_pct", {"location": "site-b"}) == 100.0
