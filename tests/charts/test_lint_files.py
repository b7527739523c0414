"""The other packaging files: Dockerfiles (hadolint and the base's rules), skaffold.yaml
against skaffold's schema, and the plain manifests in k8s/ and spark-operator/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from .manifests import (
    CHART,
    LOCAL_MANIFESTS,
    REPO,
    SKAFFOLD_SCHEMAS,
    dockerfiles,
    run,
    tool,
    validate,
)

# The services the chart deploys, as (package folder, image name).
SERVICES = {
    "sensor_simulator": "sensor-simulator",
    "dlq_inspector": "dlq-inspector",
    "quality_gate": "quality-gate",
    "warehouse_loader": "warehouse-loader",
}


def stages(path: Path) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split into stages."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    out: list[list[str]] = [[]]
    for line in lines:
        if line.upper().startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def arg_defaults(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", path.read_text(), re.MULTILINE))


def test_every_service_has_a_dockerfile():
    for package in SERVICES:
        assert (REPO / "services" / package / "Dockerfile").is_file(), package


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint(path):
    result = run(tool("hadolint"), "--config", str(REPO / ".hadolint.yaml"), str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfile_runs_as_non_root_from_pinned_bases(path):
    final = stages(path)[-1]
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users, f"{path}: the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"{path}: final USER {users[-1]} is not numeric"
    assert int(uid) > 0, f"{path}: final USER is root"
    # No registry is assumed: every stage starts FROM an image scripts/images.sh builds here
    # (a Debian root made by mmdebstrap, or an image FROM one), named by an ARG, or scratch.
    bases = arg_defaults(path)
    for stage in stages(path)[1:]:
        image = stage[0].split()[1]
        if image == "scratch" or not image.startswith("${"):
            assert image == "scratch" or image in {s[0].split()[-1] for s in stages(path)[1:]}, (
                f"{path}: FROM {image} is neither an ARG, scratch nor an earlier stage"
            )
            continue
        default = bases[image.strip("${}")]
        assert default.startswith("iotpipe/"), f"{path}: {default} is not built locally"
        assert not default.endswith(":latest"), f"{path}: {default}"


def test_base_runtime_has_no_build_tools():
    base = stages(REPO / "Dockerfile.base")
    runtime = next(s for s in base if s[0].endswith(" AS runtime"))
    text = "\n".join(runtime)
    assert "--from=uv" not in text
    assert "apt-get install" not in text
    assert "pip" not in text  # Debian's python3 without pip; the venvs uv makes have none
    assert base[-1] is runtime  # the default target
    builder = next(s for s in base if s[0].endswith(" AS builder"))
    assert any("UV_FROZEN=1" in ln for ln in builder)  # dependencies only from uv.lock
    for package, name in SERVICES.items():
        text = (REPO / "services" / package / "Dockerfile").read_text()
        assert f"uv sync --no-editable --package {name}" in text, package
        assert "FROM ${BUILDER} AS build" in text, package
        # The runtime base (with a JRE where a local Spark session runs: base-jre).
        assert re.search(r"\nFROM \$\{BASE(_JRE)?\}\n", text), package


def test_spark_image_matches_the_pinned_pyspark():
    pyspark = re.search(
        r'"pyspark==([\d.]+)"', (REPO / "services/shared/pyproject.toml").read_text()
    )
    assert pyspark
    version = pyspark.group(1)
    # The image's Spark is pyspark from uv.lock (its SPARK_HOME is pyspark's folder).
    lock = (REPO / "uv.lock").read_text()
    assert f'name = "pyspark"\nversion = "{version}"' in lock
    dockerfile = (REPO / "spark-operator/image/Dockerfile").read_text()
    assert "uv sync --no-editable --package spark-jobs" in dockerfile
    pom = (REPO / "jvm/pom.xml").read_text()
    assert f"<spark.version>{version}</spark.version>" in pom
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["spark"]["sparkVersion"] == version


def test_skaffold_schema():
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    version = config["apiVersion"].removeprefix("skaffold/")
    assert version in ("v4beta13", "v4beta14"), config["apiVersion"]
    schema = json.loads((SKAFFOLD_SCHEMAS / f"{version}.json").read_text())
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message[:300]}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(config)
    ]
    assert not errors, "\n".join(errors)
    # The schema is closed: a misspelt key fails.
    config["build"]["artifact"] = []
    assert list(jsonschema.Draft7Validator(schema).iter_errors(config))


def test_skaffold_builds_and_wires_every_image():
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    for artifact in artifacts.values():
        assert (REPO / artifact["docker"]["dockerfile"]).is_file(), artifact["image"]
    release = config["deploy"]["helm"]["releases"][0]
    assert (REPO / release["chartPath"] / "Chart.yaml").is_file()
    for values_file in release["valuesFiles"]:
        assert (REPO / values_file).is_file()
    templates = release["setValueTemplates"]
    deployed = [
        "iotpipe/spark",
        "iotpipe/orchestrator",
        *(f"iotpipe/{n}" for n in SERVICES.values()),
    ]
    for image in deployed:
        assert image in artifacts, image
        key = image.replace("/", "_").replace("-", "_")
        assert f"{{{{.IMAGE_REPO_{key}}}}}" in templates.values(), image
        assert f"{{{{.IMAGE_TAG_{key}}}}}" in templates.values(), image
    # Every value a template sets is one the chart has (an image's repository and tag).
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key in templates:
        node = values
        for part in key.split("."):
            assert isinstance(node, dict), key
            assert part in node, key
            node = node[part]
    # The classic builder (no BuildKit); images FROM the two bases get them as build args.
    assert config["build"]["local"]["useBuildkit"] is False
    # Each build arg a Dockerfile takes from a base is one that skaffold builds (every ARG
    # naming an iotpipe/ image is either required or a Debian root made by images.sh prepare).
    for image, artifact in artifacts.items():
        dockerfile = (REPO / artifact["docker"]["dockerfile"]).read_text()
        args = dict(re.findall(r"^ARG (\w+)=(iotpipe/\S+)$", dockerfile, re.M))
        required = {r["alias"]: r["image"] for r in artifact.get("requires", [])}
        for arg, default in args.items():
            if default.startswith("iotpipe/debian"):
                continue  # a root, not an artifact
            assert arg in required, (image, arg)
            assert default.removesuffix(":dev") == required[arg], (image, arg)
        assert set(required) <= set(args), image
    forwarded = {p["resourceName"] for p in config["portForward"]}
    assert {f"iotpipe-{n}" for n in SERVICES.values()} <= forwarded
    profiles = {p["name"] for p in config["profiles"]}
    assert profiles == {"dev", "eks", "local"}


def test_skaffold_local_profile_loads_what_the_chart_runs_into_the_node():
    """No registry on the project's cluster: every image the release runs is loaded into the
    node right after it is built; the roots and jars are made before the first build; what
    the release needs besides the chart is prepared before helm runs."""
    config = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    local = next(p for p in config["profiles"] if p["name"] == "local")
    cluster_sh = (REPO / "scripts/cluster.sh").read_text()
    context = re.search(r"^CONTEXT=(\S+)$", cluster_sh, re.M)
    assert context is not None
    assert local["activation"] == [{"kubeContext": context.group(1)}]
    artifacts = [a["image"] for a in config["build"]["artifacts"]]
    hooks = {
        artifacts[int(patch["path"].split("/")[3])]: patch["value"]
        for patch in local["patches"]
        if patch["path"].startswith("/build/artifacts/")
    }
    deployed = {
        "iotpipe/spark", "iotpipe/orchestrator", "iotpipe/kafka",
        *(f"iotpipe/{n}" for n in SERVICES.values()),
    }  # fmt: skip
    loads = {image for image, hook in hooks.items() if "after" in hook}
    assert loads == deployed
    for image in loads:
        (command,) = hooks[image]["after"]
        assert command["command"] == [
            "sh", "-c", 'scripts/cluster.sh load-built "$SKAFFOLD_IMAGE"'
        ]  # fmt: skip
    assert hooks[artifacts[0]] == {
        "before": [{"command": ["scripts/images.sh", "prepare"], "os": ["linux"]}]
    }
    assert artifacts[0] == "iotpipe/base-builder"  # the first built: every other is FROM it
    patches = {p["path"]: p.get("value") for p in local["patches"]}
    assert patches["/deploy/helm/releases/0/valuesFiles"] == ["charts/iotpipe/values-local.yaml"]
    assert patches["/deploy/helm/hooks"]["before"][0]["host"]["command"] == [
        "scripts/cluster.sh", "prepare"
    ]  # fmt: skip
    assert patches["/manifests/rawYaml"] == []
    # no manifests, so no kubectl deployer (it fails the run with "nothing to deploy")
    for profile in ("local", "eks"):
        ops = next(p for p in config["profiles"] if p["name"] == profile)["patches"]
        assert {"op": "remove", "path": "/deploy/kubectl"} in ops, profile
    assert "  prepare) prepare ;;" in cluster_sh
    assert (
        "  prepare) docker_up; roots; stage; exit 0 ;;" in (REPO / "scripts/images.sh").read_text()
    )
    assert {f["resourceName"] for f in local["portForward"]} == {
        f"iotpipe-{n}" for n in SERVICES.values()
    }


@pytest.mark.parametrize("name", LOCAL_MANIFESTS)
def test_local_manifests_validate_strictly(name):
    docs = [d for d in yaml.safe_load_all((REPO / name).read_text()) if d]
    assert docs
    for doc in docs:
        validate(doc)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "iotpipe"


def test_kind_config_and_operator_values():
    kind = yaml.safe_load((REPO / "k8s/kind-config.yaml").read_text())
    assert kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert kind["kind"] == "Cluster"
    images = {n["image"] for n in kind["nodes"]}
    assert len(images) == 1
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+", images.pop())
    operator = yaml.safe_load((REPO / "spark-operator/values.yaml").read_text())
    assert operator["spark"]["jobNamespaces"] == ["iotpipe"]
    assert operator["webhook"]["enable"] is True
    assert operator["prometheus"]["metrics"]["enable"] is True
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert operator["spark"]["serviceAccount"]["name"] == values["serviceAccounts"]["spark"]["name"]
