"""JVM dependencies from Maven Central, fetched once into a cache outside the clone.

``jvm/pom.xml`` names two profiles: ``kafka`` (the broker and its tools) and
``spark-kafka`` (Spark's Kafka connector). :func:`ensure` runs Maven's
copy-dependencies for a profile into ``~/.cache/iotpipe/jars/<profile>-<pom hash>``
(``IOTPIPE_CACHE`` moves it), so a changed pom gets a fresh folder and an
unchanged one is never fetched twice.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Literal

Profile = Literal["kafka", "spark-kafka"]

_DONE = ".complete"


def project_root() -> Path:
    """The repository root (the folder holding ``jvm/pom.xml``)."""
    if env := os.environ.get("IOTPIPE_HOME"):
        return Path(env).resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / "jvm" / "pom.xml").is_file():
            return parent
    raise RuntimeError("cannot find the project root (jvm/pom.xml); set IOTPIPE_HOME")


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iotpipe"
    return Path(os.environ.get("IOTPIPE_CACHE", default))


def _pom_key(jvm_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("pom.xml", "settings.xml"):
        digest.update((jvm_dir / name).read_bytes())
    return digest.hexdigest()[:12]


@cache
def ensure(profile: Profile) -> Path:
    """The folder holding the profile's jars, fetching them with Maven if needed."""
    jvm_dir = project_root() / "jvm"
    target = cache_root() / "jars" / f"{profile}-{_pom_key(jvm_dir)}"
    if (target / _DONE).exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to fetch the JVM dependencies; install it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{profile}-", dir=target.parent))
    command = [
        mvn,
        "-B",
        "-q",
        "-s",
        str(jvm_dir / "settings.xml"),
        "-f",
        str(jvm_dir / "pom.xml"),
        f"-P{profile}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"Maven could not fetch the {profile} jars:\n{result.stdout[-4000:]}")
    (staging / _DONE).touch()
    try:
        staging.rename(target)
    except OSError:  # another process finished first; theirs is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return target


def classpath(profile: Profile) -> str:
    return str(ensure(profile) / "*")


def _artifact(jar: Path) -> str:
    """``kafka-clients-3.9.1.jar`` -> ``kafka-clients``."""
    stem = jar.stem
    parts = stem.split("-")
    while parts and parts[-1][:1].isdigit():
        parts.pop()
    return "-".join(parts) or stem


def spark_connector_jars() -> list[Path]:
    """Spark's Kafka connector and the transitive jars that pyspark does not ship itself."""
    import pyspark

    shipped = {_artifact(j) for j in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}
    return sorted(j for j in ensure("spark-kafka").glob("*.jar") if _artifact(j) not in shipped)
