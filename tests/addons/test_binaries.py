"""The add-ons' binaries and images report the versions scripts/tools.sh pins. Part of the cluster
tier: the session builds what is missing (`scripts/tools.sh addons`, several minutes on a fresh
machine; a no-op once cached) and the images (`scripts/addons.sh images`, which needs the
project's iotpipe/debian and iotpipe/spark images from scripts/images.sh)."""

from __future__ import annotations

import subprocess

import pytest

from iotpipe.jars import cache_root
from tests.charts.manifests import REPO

from .manifests import addons, pinned

pytestmark = pytest.mark.cluster


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr[-3000:]}{done.stdout[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def built() -> None:
    run(str(REPO / "scripts/tools.sh"), "addons")


@pytest.fixture(scope="module")
def images(built: None) -> dict[str, str]:
    addons("images")
    listed = addons("list-images").split()
    return {i.removeprefix("iotpipe/").split(":", 1)[0]: i for i in listed}


def binary(name: str) -> str:
    return str(cache_root() / "bin" / name)


# (binary, its version command, what it prints)
VERSIONS = {
    "coredns": (["-version"], lambda: f"CoreDNS-{pinned('COREDNS_VERSION').removeprefix('v')}\n"),
    "spark-operator": (
        ["version", "--short"],
        lambda: f"Spark Operator Version: {pinned('SPARK_OPERATOR_VERSION')}\n",
    ),
    "prometheus-operator": (
        ["--version"],
        lambda: f"prometheus-operator, version {pinned('PROMETHEUS_OPERATOR_VERSION')[1:]} ",
    ),
    "prometheus-config-reloader": (
        ["--version"],
        lambda: f"prometheus-config-reloader, version {pinned('PROMETHEUS_OPERATOR_VERSION')[1:]} ",
    ),
    "prometheus-server": (
        ["--version"],
        lambda: f"prometheus, version {pinned('PROMETHEUS_SERVER_VERSION')[1:]} ",
    ),
    "pushgateway": (
        ["--version"],
        lambda: f"pushgateway, version {pinned('PUSHGATEWAY_VERSION')[1:]} ",
    ),
    "skaffold": (["version"], lambda: f"{pinned('SKAFFOLD_VERSION')}\n"),
}


@pytest.mark.parametrize("name", VERSIONS)
def test_binary_prints_its_version(built, name):
    args, expected = VERSIONS[name]
    out = run(binary(name), *args)
    assert out.startswith(expected()), out[:500]


# The image of each add-on runs its binary (entrypoint) and reports the same version.
IMAGES = {
    "coredns": "coredns",
    "spark-operator": "spark-operator",
    "prometheus-operator": "prometheus-operator",
    "prometheus-config-reloader": "prometheus-config-reloader",
    "prometheus": "prometheus-server",
    "pushgateway": "pushgateway",
}


@pytest.mark.parametrize("image", IMAGES)
def test_image_runs_its_binary_as_non_root(images, image):
    args, expected = VERSIONS[IMAGES[image]]
    out = run("docker", "run", "--rm", "--network", "none", images[image], *args)
    assert out.startswith(expected()), out[:500]
    user = run("docker", "image", "inspect", "--format", "{{.Config.User}}", images[image])
    uid = user.strip().split(":")[0]
    assert uid.isdigit(), user
    assert int(uid) > 0, user


def test_coredns_registers_every_directive_of_the_corefile(built):
    """The wrapper-built CoreDNS (only the plugins the cluster uses) knows each directive of
    k8s/addons/coredns.yaml's Corefile, and none of the cloud providers' plugins."""
    from .test_manifests import corefile_directives

    listed = {line.strip() for line in run(binary("coredns"), "-plugins").splitlines()}
    assert corefile_directives() <= listed, listed
    assert not {"route53", "azure", "clouddns", "etcd"} & listed, listed
