"""The cluster tier: the chart installed on a real single-node Kubernetes cluster on this machine.

One session brings it up the way a newcomer would (README, "Kubernetes on your machine"):
`scripts/tools.sh cluster`, `scripts/images.sh`, `scripts/addons.sh build images`,
`scripts/cluster.sh up`, `scripts/cluster.sh reset` (no release or data left from an earlier
session), then `scripts/cluster.sh deploy` (add-ons, Secrets, PostgreSQL, and
`helm upgrade --install` with charts/iotpipe/values-local.yaml). Every step is the real one;
a step that fails fails the session with its output. The cluster is stopped afterwards
(`scripts/cluster.sh down`) unless IOTPIPE_KEEP_CLUSTER=1.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from iotpipe.settings import KafkaSettings

from .kube import REPO, Kube, cluster_names

CACHE = Path(os.environ.get("IOTPIPE_CACHE", Path.home() / ".cache" / "iotpipe"))
STATE = Path(os.environ.get("IOTPIPE_CLUSTER_STATE", CACHE / "cluster"))
LAKE = Path("/var/lib/iotpipe/lake")
"""The lake's folder on the node, mounted at the same path in every pod that uses it
(scripts/cluster.sh, values-local.yaml)."""


def step(*cmd: str, timeout: float = 3600) -> None:
    """Run one bring-up step; fail the session with its output's tail if it fails."""
    done = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        pytest.fail(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{tail}", pytrace=False)


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    if os.geteuid() != 0:
        pytest.fail("the cluster tier needs root (kubelet, containerd)", pytrace=False)
    step("scripts/tools.sh", "cluster")
    step("scripts/tools.sh", "helm")
    step("scripts/images.sh")
    step("scripts/addons.sh", "build")
    step("scripts/addons.sh", "images")
    step("scripts/cluster.sh", "up", timeout=900)
    try:
        # A kept cluster (IOTPIPE_KEEP_CLUSTER=1) has an earlier session's events and lake:
        # every session starts from an empty release, as a new user's would.
        step("scripts/cluster.sh", "reset", timeout=900)
        step("scripts/cluster.sh", "deploy", timeout=1800)
        yield Kube(kubeconfig=STATE / "kubeconfig", kubectl_path=CACHE / "bin" / "kubectl")
    finally:
        if os.environ.get("IOTPIPE_KEEP_CLUSTER") != "1":
            subprocess.run(["scripts/cluster.sh", "down"], cwd=REPO, check=False, timeout=600)


@pytest.fixture(scope="session")
def names(kube: Kube) -> Iterator[None]:
    """Cluster DNS names resolve on the host for the whole session (kube.cluster_names)."""
    with cluster_names(kube):
        yield


@pytest.fixture(scope="session")
def cluster_ca(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kafka") / "ca.crt"
    path.write_text(kube.secret("iotpipe-cluster-ca-cert", "ca.crt"))
    return path


def kafka_as(kube: Kube, user: str, cluster_ca: Path) -> KafkaSettings:
    """The in-cluster Kafka as one of the release's users (the same TLS + SCRAM as every
    client; each user may do only what its ACLs say)."""
    return KafkaSettings(
        bootstrap_servers="iotpipe-kafka-bootstrap.iotpipe.svc:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=user,
        sasl_password=kube.secret(user, "password"),
        ssl_cafile=cluster_ca,
    )


@pytest.fixture(scope="session")
def kafka_as_inspector(kube: Kube, names: None, cluster_ca: Path) -> KafkaSettings:
    """The DLQ inspector's user: it reads the DLQ (the accounting's dead letters)."""
    return kafka_as(kube, "iotpipe-dlq-inspector", cluster_ca)


@pytest.fixture(scope="session")
def kafka_as_stream(kube: Kube, names: None, cluster_ca: Path) -> KafkaSettings:
    """The stream's user: it reads the events topic (the accounting's produced records)."""
    return kafka_as(kube, "iotpipe-spark", cluster_ca)


@pytest.fixture(scope="session")
def warehouse_dsn(kube: Kube) -> str:
    """The loader's own DSN, its host name swapped for the Service's address (libpq resolves
    names itself, past ``cluster_names``)."""
    dsn = urlsplit(kube.secret("iotpipe-warehouse", "dsn"))
    address = kube.resolve(dsn.hostname or "")
    assert address, f"the warehouse host {dsn.hostname} is not a Service of the cluster"
    netloc = dsn.netloc.replace(f"@{dsn.hostname}", f"@{address}")
    return urlunsplit(dsn._replace(netloc=netloc))


def token(kube: Kube, service: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {kube.secret('iotpipe-api-tokens', service)}"}
