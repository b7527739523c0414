"""The learned anomaly detector: an isolation forest per sensor type over per-reading
features (:data:`spark_jobs.anomaly.FEATURES`), its versioned files under ``Lake.models``,
and its vectorised scoring inside the Silver job.

Layout (any file system Arrow knows: a local folder or ``s3a://``)::

    <lake>/_models/<sensor_type>/<version>/model.pkl    the fitted forest (pickle)
    <lake>/_models/<sensor_type>/<version>/meta.json    what it was trained on
    <lake>/_models/<sensor_type>/LATEST                 the version Silver scores with

The version is the first 16 hex digits of the SHA-256 of the metadata (sensor type,
training window, features, hyperparameters, training rows) and the model's bytes.
Training is deterministic (a fixed ``random_state`` and a sample chosen by a hash of
(sensor_id, timestamp), sorted), so retraining on the same window gives the same bytes
and therefore the same version.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson
import pandas as pd
from pyarrow import fs as pafs

from iotpipe import lakefs
from spark_jobs.anomaly import FEATURES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from sklearn.ensemble import IsolationForest

log = logging.getLogger(__name__)

RANDOM_STATE: Final = 0
LATEST: Final = "LATEST"


@dataclass(frozen=True)
class ModelInfo:
    """``meta.json``: what a model was trained on, and how."""

    sensor_type: str
    window_start: str
    window_end: str
    features: list[str]
    trees: int
    max_samples: int
    threshold: float
    training_rows: int
    sklearn_version: str
    version: str = ""


@dataclass(frozen=True)
class Detector:
    info: ModelInfo
    model: IsolationForest

    @property
    def version(self) -> str:
        return self.info.version

    def score(self, features: np.ndarray) -> np.ndarray:
        """``ml_anomaly_score`` in (0, 1]: the isolation forest's anomaly score (Liu et al.:
        near 1 for readings isolated in a few splits, about 0.5 and below for ordinary ones)."""
        return np.asarray(-self.model.score_samples(features))


def version_of(info: ModelInfo, blob: bytes) -> str:
    """The version a model's metadata and bytes make (:mod:`spark_jobs.detector`'s doc)."""
    unversioned = asdict(info) | {"version": ""}
    digest = hashlib.sha256(orjson.dumps(unversioned, option=orjson.OPT_SORT_KEYS) + blob)
    return digest.hexdigest()[:16]


class TamperedModel(ValueError):
    """A model's files do not hash to its version: they were changed after training."""


def fit(features: np.ndarray, info: ModelInfo) -> tuple[Detector, bytes]:
    """A detector trained on ``features`` (rows in a deterministic order) and its file bytes."""
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(
        n_estimators=info.trees,
        max_samples=min(info.max_samples, len(features)),
        random_state=RANDOM_STATE,
    ).fit(features)
    blob = pickle.dumps(model, protocol=5)
    versioned = ModelInfo(**(asdict(info) | {"version": version_of(info, blob)}))
    return Detector(versioned, model), blob


class ModelStore:
    """The versioned model files under ``Lake.models``."""

    def __init__(self, root: str) -> None:
        self.fs, self.root = lakefs.filesystem(root)

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _write(self, path: str, data: bytes) -> None:
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def _read(self, path: str) -> bytes | None:
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as stream:
            return bytes(stream.read())

    def save(self, detector: Detector, blob: bytes, *, latest: bool = True) -> str:
        """Write the model's files (idempotent: same version, same bytes); returns its folder."""
        info = detector.info
        folder = self._path(info.sensor_type, info.version)
        self._write(f"{folder}/model.pkl", blob)
        self._write(
            f"{folder}/meta.json",
            orjson.dumps(asdict(info), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2),
        )
        if latest:
            self._write(self._path(info.sensor_type, LATEST), info.version.encode())
        return folder

    def info(self, sensor_type: str, version: str) -> ModelInfo | None:
        raw = self._read(self._path(sensor_type, version, "meta.json"))
        return ModelInfo(**orjson.loads(raw)) if raw is not None else None

    def blob(self, sensor_type: str, version: str) -> bytes | None:
        return self._read(self._path(sensor_type, version, "model.pkl"))

    def latest(self, sensor_type: str) -> Detector | None:
        """The model Silver scores ``sensor_type`` with, or None before the first training."""
        latest = self._read(self._path(sensor_type, LATEST))
        if latest is None:
            return None
        version = latest.decode(errors="replace").strip()
        info = self.info(sensor_type, version)
        blob = self.blob(sensor_type, version)
        if info is None or blob is None:
            log.warning("model %s of %s is incomplete: not used", version, sensor_type)
            return None
        # Unpickling runs code: only bytes that hash, with their metadata, to the version
        # LATEST names (a 64-bit SHA-256 prefix) are loaded.
        if not (info.version == version == version_of(info, blob)):
            raise TamperedModel(
                f"model {version} of {sensor_type}: its files hash to {version_of(info, blob)}, "
                "not to its version; retrain it (python -m spark_jobs.train_detector)"
            )
        return Detector(info, pickle.loads(blob))

    def detectors(self, sensor_types: list[str]) -> dict[str, Detector]:
        found = {kind: self.latest(kind) for kind in sensor_types}
        return {kind: detector for kind, detector in found.items() if detector is not None}


def score_frame(frame: pd.DataFrame, detectors: Mapping[str, Detector]) -> np.ndarray:
    """``ml_anomaly_score`` of rows with ``sensor_type`` and :data:`FEATURES` (NaN where a
    feature is missing or the type has no model)."""
    out = np.full(len(frame), np.nan)
    values = frame[list(FEATURES)].to_numpy(dtype=float)
    usable = ~np.isnan(values).any(axis=1)
    kinds = frame["sensor_type"].to_numpy()
    for kind, detector in detectors.items():
        rows = usable & (kinds == kind)
        if rows.any():
            out[rows] = detector.score(values[rows])
    return out


def with_ml_scores(
    spark: SparkSession, frame: DataFrame, detectors: Mapping[str, Detector]
) -> DataFrame:
    """Add ``ml_anomaly_score`` (a pandas UDF: Arrow batches scored by numpy/scikit-learn)
    and ``ml_model_version``; both null without a model for the row's type."""
    from pyspark.sql import functions as sf

    if not detectors:
        return frame.withColumn("ml_anomaly_score", sf.lit(None).cast("double")).withColumn(
            "ml_model_version", sf.lit(None).cast("string")
        )
    shared = spark.sparkContext.broadcast(dict(detectors))

    def score(kind: pd.Series, z: pd.Series, z_long: pd.Series, step: pd.Series) -> pd.Series:
        batch = pd.DataFrame(dict(zip(FEATURES, (z, z_long, step), strict=True)))
        batch["sensor_type"] = kind
        return pd.Series(score_frame(batch, shared.value))

    udf = sf.pandas_udf(score, "double")  # type: ignore[call-overload]
    version: Any = sf.lit(None).cast("string")
    for kind, detector in sorted(detectors.items()):
        version = sf.when(sf.col("sensor_type") == kind, sf.lit(detector.version)).otherwise(
            version
        )
    return frame.withColumn("ml_anomaly_score", udf("sensor_type", *FEATURES)).withColumn(
        "ml_model_version", version
    )
