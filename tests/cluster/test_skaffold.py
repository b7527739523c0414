"""`skaffold run -p local` against the cluster, as README's "Kubernetes on your machine" has a
newcomer do it: skaffold (built from its Go module) builds every image with the local Docker,
its hooks load each one into the node (no registry, nothing pushed) and make what the release
needs, and it upgrades the release that `scripts/cluster.sh deploy` installed. Afterwards every
workload of the release runs the image skaffold built, every pod is Ready and each service
answers through its Service.

This module runs after the pipeline and Prometheus modules (pytest takes them in name order):
the upgrade restarts the pods those modules use.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import CACHE
from .kube import REPO, Kube, wait_until
from .test_pipeline import SERVICES, ready

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]

WORKLOADS = ("deployments", "statefulsets")


def release_images(kube: Kube) -> dict[str, str]:
    """``<kind>/<name>/<container>`` -> image, for every container of the release's workloads
    that runs one of the project's images (iotpipe/...)."""
    images: dict[str, str] = {}
    for kind in WORKLOADS:
        for item in kube.get(kind, "-l", "app.kubernetes.io/instance=iotpipe")["items"]:
            spec = item["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                if "iotpipe/" in container["image"]:
                    key = f"{kind}/{item['metadata']['name']}/{container['name']}"
                    images[key] = container["image"]
    return images


def rolled_out(kube: Kube) -> bool:
    """Every workload of the release has its new pods Ready and no old one left."""
    for kind in WORKLOADS:
        for item in kube.get(kind, "-l", "app.kubernetes.io/instance=iotpipe")["items"]:
            status: dict[str, Any] = item.get("status", {})
            wanted = item["spec"].get("replicas", 1)
            if status.get("observedGeneration", 0) < item["metadata"]["generation"]:
                return False
            if (status.get("updatedReplicas", 0), status.get("readyReplicas", 0)) != (
                wanted,
                wanted,
            ):
                return False
    return True


def all_ready(kube: Kube) -> bool:
    """Every running pod of the release is Ready and none is on its way out (hook Jobs that
    have finished aside; the stream's driver may be restarting with its new image)."""
    pods = kube.pods("-l", "app.kubernetes.io/instance=iotpipe")
    return all(
        ready(pod) and "deletionTimestamp" not in pod["metadata"]
        for pod in pods
        if pod["status"]["phase"] != "Succeeded"
    )


SKAFFOLD_TAG = re.compile(r":(\d{8}T\d{6}|[0-9a-f]{64})$")
"""The tags a skaffold build leaves: its own (a timestamp) and the one the load hook gives it
(the image id)."""


def docker_lines(*args: str) -> list[str]:
    listed = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.fixture
def skaffold_images_removed() -> Iterator[None]:
    """Each skaffold run leaves a new copy of every image under its tags, and its build stages
    untagged (gigabytes; a few runs fill this machine's disk, and the node's image store
    outlives the cluster): remove them afterwards, from Docker and from the node."""
    dangling = ["images", "-q", "--no-trunc", "--filter", "dangling=true"]
    before = set(docker_lines(*dangling))
    yield
    tags = [
        t
        for t in docker_lines("images", "--format", "{{.Repository}}:{{.Tag}}")
        if t.startswith("iotpipe/") and SKAFFOLD_TAG.search(t)
    ]
    if tags:
        subprocess.run(["docker", "rmi", *tags], capture_output=True, check=False)
        # The node's copies (the running containers keep their snapshots until they go).
        node = ["ctr", "--address", "/run/iotpipe-cluster/containerd.sock", "-n", "k8s.io"]
        named = [f"docker.io/{t}" for t in tags]
        subprocess.run([*node, "images", "rm", *named], capture_output=True, check=False)
    left = [i for i in docker_lines(*dangling) if i not in before]
    if left:
        subprocess.run(["docker", "rmi", *left], capture_output=True, check=False)


@pytest.mark.usefixtures("skaffold_images_removed")
def test_skaffold_run_rebuilds_and_redeploys_the_release(kube: Kube) -> None:
    before = release_images(kube)
    assert len(before) >= 5, f"the release runs too few project images: {before}"
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "PATH": f"{CACHE / 'bin'}:{os.environ['PATH']}",
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
    }
    done = subprocess.run(
        [
            str(CACHE / "bin" / "skaffold"),
            "run",
            "-p",
            "local",
            "--status-check=true",
            "--cache-artifacts=false",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = done.stdout + done.stderr
    tail = "\n".join(output.splitlines()[-60:])
    assert done.returncode == 0, f"skaffold run failed (exit {done.returncode}):\n{tail}"

    after = release_images(kube)
    assert after.keys() == before.keys(), (before, after)
    unchanged = {k: v for k, v in after.items() if before[k] == v}
    assert not unchanged, f"still on the images cluster.sh deployed: {unchanged}"

    wait_until("the release rolled out", lambda: rolled_out(kube), timeout=600, every=5)
    wait_until("every pod of the release Ready", lambda: all_ready(kube), timeout=600, every=5)
    for service in SERVICES:
        url = kube.service_url(f"iotpipe-{service}")
        readyz = httpx.get(f"{url}/readyz", timeout=30)
        assert readyz.status_code == 200, f"{service}: {readyz.text}"
