"""Rendering the chart and validating what it renders (helpers of the chart tests).

- :func:`render` runs ``helm template`` (cached per argument set) and returns the documents.
- :func:`validate` checks one document: built-in kinds strictly against the Kubernetes
  schemas of PyPI ``kubernetes-validate``; custom resources against the upstream CRDs in
  ``<repo>/../shared/crds`` (``IOTPIPE_CRDS`` overrides), read as closed objects the way the
  API server's strict field validation reads them (see that folder's README).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from iotpipe.jars import cache_root

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "iotpipe"
SHARED = Path(os.environ.get("IOTPIPE_SHARED", REPO.parent / "shared"))
CRDS = Path(os.environ.get("IOTPIPE_CRDS", SHARED / "crds"))
SKAFFOLD_SCHEMAS = Path(os.environ.get("IOTPIPE_SKAFFOLD_SCHEMAS", SHARED / "schemas" / "skaffold"))
# The Kubernetes minor version the manifests are validated against (EKS's current default).
KUBERNETES_VERSION = "1.33"
RELEASE = "iotpipe"
NAMESPACE = "iotpipe"
PROFILES: dict[str, tuple[str, ...]] = {
    "default": (),
    "dev": ("values-dev.yaml",),
    "eks": ("values-eks.yaml",),
    # kafka.provider statefulset with the defaults (values files outside the chart are paths)
    "statefulset": (str(Path(__file__).with_name("values-statefulset.yaml")),),
    # the project's own single-node cluster (scripts/cluster.sh)
    "local": ("values-local.yaml",),
}
# The profiles whose Kafka is the chart's own StatefulSet rather than Strimzi's resources.
STATEFULSET_PROFILES = {"statefulset", "local"}

# The API versions of the custom resources the target clusters serve beyond Kubernetes' own, as
# `helm template --api-versions` (helm install reads them from the cluster). EKS and the local
# cluster both run prometheus-operator; without it the chart renders no monitors
# (.Capabilities.APIVersions, test_render.py::test_monitors_render_only_where_prometheus_operator_is).
CLUSTER_API_VERSIONS = ("monitoring.coreos.com/v1",)

# Plain manifests outside the chart, validated and checked like it.
LOCAL_MANIFESTS = [
    "k8s/namespace.yaml",
    "k8s/minio.yaml",
    "k8s/postgres.yaml",
    "spark-operator/rbac.yaml",
]

Doc = dict[str, Any]
# libyaml's loader when present: the CRDs are several MB of YAML.
Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str) -> list[Doc]:
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc]


class HelmError(RuntimeError):
    pass


def tool(name: str) -> str:
    """A tool's path: on PATH, else where scripts/tools.sh puts it."""
    found = shutil.which(name) or shutil.which(name, path=str(cache_root() / "bin"))
    if found is None:
        raise RuntimeError(f"{name} is not installed: run `scripts/tools.sh {name}`")
    return found


def run(*command: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)


def helm(*args: str) -> str:
    result = run(tool("helm"), *args)
    if result.returncode != 0:
        raise HelmError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def _set_args(values: Mapping[str, object]) -> list[str]:
    args = []
    for key, value in values.items():
        if isinstance(value, str):
            args += ["--set-string", f"{key}={value}"]
        else:  # numbers, booleans, lists and maps as JSON
            args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


@functools.cache
def _render(
    values_files: tuple[str, ...],
    settings: tuple[tuple[str, str], ...],
    api_versions: tuple[str, ...] = CLUSTER_API_VERSIONS,
) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--kube-version", f"{KUBERNETES_VERSION}.0"]
    for version in api_versions:
        args += ["--api-versions", version]
    for name in values_files:
        args += ["-f", str(CHART / name)]
    return helm(*args, *_set_args({k: json.loads(v) for k, v in settings}))


def render(profile: str = "default", /, **values: object) -> list[Doc]:
    """The chart's documents for a profile (PROFILES), with ``--set key=value`` overrides
    given as keyword arguments whose ``__`` stands for ``.`` (``kafka__brokers__replicas=5``),
    on a cluster that serves CLUSTER_API_VERSIONS."""
    return render_on(CLUSTER_API_VERSIONS, profile, **values)


def render_on(
    api_versions: tuple[str, ...], profile: str = "default", /, **values: object
) -> list[Doc]:
    """:func:`render` on a cluster that serves ``api_versions`` beyond Kubernetes' own."""
    settings = tuple(sorted((k.replace("__", "."), json.dumps(v)) for k, v in values.items()))
    return load_all(_render(PROFILES[profile], settings, api_versions))


def dockerfiles() -> list[Path]:
    found = [REPO / "Dockerfile.base", *sorted(REPO.glob("services/*/Dockerfile"))]
    found += sorted((REPO / "spark-operator").rglob("Dockerfile"))
    return [*found, *sorted((REPO / "k8s").rglob("Dockerfile"))]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _closed(schema: Any) -> Any:
    """A copy of a CRD schema in which every object that lists its properties is closed."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@functools.cache
def crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> a validator of the CRD's closed openAPIV3Schema."""
    if not CRDS.is_dir():
        raise RuntimeError(f"no CRDs at {CRDS}: set IOTPIPE_CRDS to the shared/crds folder")
    validators = {}
    for path in sorted(CRDS.rglob("*.yaml")):
        for crd in load_all(path.read_text()):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = _closed(version["schema"]["openAPIV3Schema"])
                schema["properties"].setdefault("metadata", {"type": "object"})
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    schema
                )
    return validators


def validate(doc: Doc) -> None:
    """Raise AssertionError with every problem of one document."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    validator = crd_validators().get(key)
    if validator is not None:
        errors = [
            f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in validator.iter_errors(doc)
        ]
        assert not errors, f"{key[1]}/{doc['metadata'].get('name')}:\n" + "\n".join(errors)
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        raise AssertionError(f"{key} is neither a Kubernetes kind nor a known CRD") from None
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(map(str, exc.path))
        raise AssertionError(
            f"{key[1]}/{doc['metadata'].get('name')}: {path}: {exc.message[:400]}"
        ) from None


def pod_templates(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(label, pod spec) of every workload that carries a pod template, and of every bare Pod
    (the chart's are its `helm test` hooks)."""
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] == "Pod":
            yield f"Pod/{doc['metadata']['name']}", spec
        elif doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", spec["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield (
                f"CronJob/{doc['metadata']['name']}",
                spec["jobTemplate"]["spec"]["template"]["spec"],
            )


def spark_roles(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(label, driver/executor spec) of every SparkApplication and schedule template."""
    for label, spec in spark_apps(docs):
        for role in ("driver", "executor"):
            yield f"{label}.{role}", spec[role]


def spark_apps(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(label, application spec) of every SparkApplication and schedule template."""
    for doc in docs:
        if doc["kind"] == "SparkApplication":
            yield f"SparkApplication/{doc['metadata']['name']}", doc["spec"]
        elif doc["kind"] == "ScheduledSparkApplication":
            yield f"ScheduledSparkApplication/{doc['metadata']['name']}", doc["spec"]["template"]


def spark_pods(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(label, pod spec) of every driver and executor as the operator's webhook builds it from
    a SparkApplication: the role's pod and container security contexts, ports, init containers,
    sidecars and host networking, and the application's volumes the role mounts. (Spark adds
    an emptyDir per local dir and a ConfigMap with its configuration; both are allowed types.)"""
    for label, spec in spark_apps(docs):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for role in ("driver", "executor"):
            pod = spec[role]
            mounted = [m["name"] for m in pod.get("volumeMounts", [])]
            container = {
                "name": f"spark-kubernetes-{role}",
                "securityContext": pod.get("securityContext", {}),
                "ports": pod.get("ports", []),
            }
            yield (
                f"{label}.{role}",
                {
                    "serviceAccountName": pod.get("serviceAccount"),
                    "hostNetwork": pod.get("hostNetwork", False),
                    "securityContext": pod.get("podSecurityContext", {}),
                    "containers": [container, *pod.get("sidecars", [])],
                    "initContainers": pod.get("initContainers", []),
                    "volumes": [
                        volumes[name] for name in dict.fromkeys(mounted) if name in volumes
                    ],
                },
            )
