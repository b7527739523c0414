"""Helpers of the add-on tests: the add-on manifests, the versions scripts/tools.sh pins, and the
CRDs of the operator releases scripts/addons.sh installs (read from their Go modules)."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.charts.manifests import REPO, Loader, _closed, validate

ADDONS = REPO / "k8s" / "addons"
MANIFESTS = [
    "coredns.yaml",
    "prometheus-operator/operator.yaml",
    "prometheus.yaml",
    "pushgateway.yaml",
]
SCRIPT = REPO / "scripts" / "addons.sh"

Doc = dict[str, Any]


class _CrdLoader(Loader):  # type: ignore[valid-type,misc]
    """The safe loader, reading YAML's '=' (the "value" tag) as the string it is in these CRDs."""


_CrdLoader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


def load(name: str) -> list[Doc]:
    return [d for d in yaml.load_all((ADDONS / name).read_text(), Loader=Loader) if d]


def pinned(name: str) -> str:
    """A version pinned in scripts/tools.sh (NAME=value)."""
    found = re.search(rf"^{name}=(\S+)$", (REPO / "scripts/tools.sh").read_text(), re.MULTILINE)
    assert found, f"scripts/tools.sh pins no {name}"
    return found.group(1)


def addons(*args: str) -> str:
    done = subprocess.run(
        [str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, f"scripts/addons.sh {' '.join(args)}:\n{done.stderr}{done.stdout}"
    return done.stdout


@functools.cache
def module_dir(module: str) -> Path:
    """A Go module's source in the module cache (`go mod download`: a no-op once cached)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"go mod download {module}: {done.stderr}{done.stdout}"
    info = json.loads(done.stdout)
    assert "Dir" in info, f"go mod download {module}: {info}"
    return Path(info["Dir"])


def crd_dirs() -> list[Path]:
    """The CRDs scripts/addons.sh installs: prometheus-operator's and the Spark operator chart's."""
    prometheus = f"github.com/prometheus-operator/prometheus-operator@{pinned('PROMETHEUS_OPERATOR_VERSION')}"
    spark = f"github.com/kubeflow/spark-operator/v2@{pinned('SPARK_OPERATOR_VERSION')}"
    return [
        module_dir(prometheus) / "example" / "prometheus-operator-crd",
        module_dir(spark) / "charts" / "spark-operator-chart" / "crds",
    ]


@functools.cache
def installed_crds() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> a validator of the installed CRD's closed schema (as in tests/charts)."""
    validators = {}
    for folder in crd_dirs():
        paths = sorted(folder.glob("*.yaml"))
        assert paths, f"no CRDs in {folder}"
        for path in paths:
            for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = _closed(version["schema"]["openAPIV3Schema"])
                    schema["properties"].setdefault("metadata", {"type": "object"})
                    validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                        schema
                    )
    return validators


def validate_installed(doc: Doc) -> None:
    """Built-in kinds as tests/charts validates them; custom resources against the CRDs the
    add-ons install (not the newer ones in shared/crds)."""
    validator = installed_crds().get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if validator is None:
        validate(doc)
        return
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
        for e in validator.iter_errors(doc)
    ]
    assert not errors, f"{doc['kind']}/{doc['metadata'].get('name')}:\n" + "\n".join(errors)
