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
import signal
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


def skaffold_env(kube: Kube) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig),
        "PATH": f"{CACHE / 'bin'}:{os.environ['PATH']}",
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
    }


@pytest.mark.usefixtures("skaffold_images_removed")
def test_skaffold_run_rebuilds_and_redeploys_the_release(kube: Kube) -> None:
    before = release_images(kube)
    assert len(before) >= 5, f"the release runs too few project images: {before}"
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
        env=skaffold_env(kube),
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


KAFKA_DOCKERFILE = REPO / "k8s" / "images" / "kafka" / "Dockerfile"
KAFKA = "statefulsets/iotpipe-kafka/kafka"


def kafka_ready(kube: Kube) -> bool:
    pods = kube.pods("-l", "app.kubernetes.io/instance=iotpipe,app.kubernetes.io/component=kafka")
    return bool(pods) and all(ready(p) and "deletionTimestamp" not in p["metadata"] for p in pods)


@pytest.mark.usefixtures("skaffold_images_removed")
def test_skaffold_dev_rebuilds_what_changed_and_rolls_it_out(
    kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The inner loop: `skaffold dev -p local` deploys, watches, and when one image's input
    changes (a label added to Kafka's Dockerfile) rebuilds that image alone, loads it into the
    node and rolls out the workload that runs it."""
    log_path = tmp_path_factory.mktemp("skaffold-dev") / "skaffold-dev.log"
    original = KAFKA_DOCKERFILE.read_text()
    with log_path.open("w") as log:
        dev = subprocess.Popen(
            [
                str(CACHE / "bin" / "skaffold"),
                "dev",
                "-p",
                "local",
                "--status-check=true",
                "--cache-artifacts=false",
                "--cleanup=false",
                "--port-forward=off",
                "--trigger=polling",
                "--watch-poll-interval=1000",
            ],
            cwd=REPO,
            env=skaffold_env(kube),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output() -> str:
        return log_path.read_text(errors="replace")

    def tail() -> str:
        return "\n".join(output().splitlines()[-60:])

    def watching(times: int) -> bool:
        assert dev.poll() is None, f"skaffold dev exited ({dev.returncode}):\n{tail()}"
        return output().count("Watching for changes") >= times

    try:
        wait_until("skaffold dev's first deploy", lambda: watching(1), timeout=1800, every=5)
        first = release_images(kube)
        assert KAFKA in first, first
        first_builds = output().count("Building [")

        KAFKA_DOCKERFILE.write_text(original + "LABEL org.iotpipe.skaffold-dev-test=changed\n")
        wait_until("the rebuild and redeploy", lambda: watching(2), timeout=1200, every=5)
        rebuilt = output().split("Watching for changes")[1]
        assert "Building [iotpipe/kafka]" in rebuilt, tail()
        others = [line for line in rebuilt.splitlines() if "Building [" in line]
        assert others == [line for line in others if "iotpipe/kafka]" in line], (
            f"more than Kafka's image rebuilt for a change to Kafka's Dockerfile: {others}"
        )
        assert output().count("Building [") == first_builds + 1, tail()

        second = release_images(kube)
        assert second[KAFKA] != first[KAFKA], "Kafka still runs the image of the first deploy"
        # Kafka's init container (format) runs the same image: it changes with it.
        kafka_workload = KAFKA.rsplit("/", 1)[0] + "/"
        unchanged = {
            k: v for k, v in second.items() if not k.startswith(kafka_workload) and first[k] != v
        }
        assert not unchanged, f"images changed that nothing changed for: {unchanged}"
        wait_until("Kafka Ready on its new image", lambda: kafka_ready(kube), timeout=600)
    finally:
        KAFKA_DOCKERFILE.write_text(original)
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=120)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(timeout=30)
    wait_until("every pod of the release Ready", lambda: all_ready(kube), timeout=600, every=5)
