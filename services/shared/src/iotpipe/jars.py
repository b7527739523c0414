"""JVM dependencies from Maven Central, fetched once into a cache outside the clone.

``jvm/pom.xml`` names two profiles: ``kafka`` (the broker and its tools) and
``spark-kafka`` (Spark's Kafka connector). :func:`ensure` runs Maven's
copy-dependencies for a profile into ``~/.cache/iotpipe/jars/<profile>-<pom hash>``
(``IOTPIPE_CACHE`` moves it), so a changed pom gets a fresh folder and an
unchanged one is never fetched twice. :func:`spark_jobs_jar` builds the Spark jobs'
own Java code (``services/spark_jobs/jvm``) the same way, keyed by its sources.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
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


def _digest(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _maven(jvm_dir: Path, pom: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven (mvn) is needed to build the JVM side; install it first")
    command = [mvn, "-B", "-q", "-s", str(jvm_dir / "settings.xml"), "-f", str(pom), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def _once(
    target: Path, what: str, build: Callable[[Path], subprocess.CompletedProcess[str]]
) -> Path:
    """``target`` (a folder), made by ``build(staging folder)`` unless an earlier run made it."""
    if (target / _DONE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    result = build(staging)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"Maven could not {what}:\n{result.stdout[-4000:]}")
    (staging / _DONE).touch()
    try:
        staging.rename(target)
    except OSError:  # another process finished first; theirs is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    return target


@cache
def ensure(profile: Profile) -> Path:
    """The folder holding the profile's jars, fetching them with Maven if needed."""
    jvm_dir = project_root() / "jvm"
    key = _digest(jvm_dir / "pom.xml", jvm_dir / "settings.xml")
    return _once(
        cache_root() / "jars" / f"{profile}-{key}",
        f"fetch the {profile} jars",
        lambda staging: _maven(
            jvm_dir,
            jvm_dir / "pom.xml",
            f"-P{profile}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ),
    )


@cache
def spark_jobs_jar() -> Path:
    """``iotpipe-spark-jobs.jar`` (the Spark jobs' Java UDFs, ``services/spark_jobs/jvm``),
    built with Maven once per version of its sources."""
    root = project_root()
    jvm_dir, module = root / "jvm", root / "services" / "spark_jobs" / "jvm"
    sources = sorted((module / "src").rglob("*.java"))
    key = _digest(jvm_dir / "pom.xml", jvm_dir / "settings.xml", module / "pom.xml", *sources)
    folder = _once(
        cache_root() / "jars" / f"spark-jobs-{key}",
        "build services/spark_jobs/jvm",
        lambda staging: _maven(
            jvm_dir, module / "pom.xml", "package", f"-Diotpipe.build.directory={staging}"
        ),
    )
    return folder / "iotpipe-spark-jobs.jar"


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
