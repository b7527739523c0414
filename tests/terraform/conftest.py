"""Fixtures of the Terraform tests: the helm_values script and the cached tool binaries."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

from tests.terraform.hcl import TERRAFORM

BIN = Path(os.environ.get("IOTPIPE_CACHE", Path.home() / ".cache/iotpipe")) / "bin"


@pytest.fixture(scope="session")
def helm_values() -> ModuleType:
    """terraform/helm_values.py, imported from its file (terraform/ is not a package)."""
    spec = importlib.util.spec_from_file_location("helm_values", TERRAFORM / "helm_values.py")
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _tool(name: str) -> Path:
    path = BIN / name
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: run `scripts/tools.sh {name}` first", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tofu() -> Path:
    return _tool("tofu")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return _tool("checkov")
