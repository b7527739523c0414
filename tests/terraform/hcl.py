"""The Terraform tree as data: every module under terraform/ parsed with python-hcl2.

Blocks are merged over a module's files, string quotes are stripped, and a small resolver
follows `${local.x}` and `${module.m.output}` references inside the tree, so tests can compare
what a lifecycle filter or an IAM resource really names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
T = TypeVar("T")
REFERENCE = re.compile(r"\$\{(local|module)\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?\}")


@dataclass
class Module:
    path: Path
    blocks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def _labelled(self, kind: str, type_: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for block in self.blocks.get(kind, []):
            found.update(block.get(type_, {}))
        return found

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return self._labelled("resource", type_)

    def data(self, type_: str) -> dict[str, dict[str, Any]]:
        return self._labelled("data", type_)

    def _named(self, kind: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for block in self.blocks.get(kind, []):
            found.update(block)
        return found

    @property
    def locals(self) -> dict[str, Any]:
        return self._named("locals")

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return self._named("variable")

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return self._named("output")

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        return self._named("module")

    def callee(self, name: str) -> Module:
        return module(
            str((self.path / self.calls[name]["source"]).resolve().relative_to(TERRAFORM))
        )

    def default(self, variable: str) -> Any:
        return self.variables[variable]["default"]

    def resolve(self, value: str) -> str:
        """Substitute references to this module's locals and its callees' outputs."""

        def substitute(match: re.Match[str]) -> str:
            kind, name, attribute = match.groups()
            if kind == "local":
                target = self.locals[name]
                return self.resolve(target) if isinstance(target, str) else match.group(0)
            callee = self.callee(name)
            return callee.resolve(callee.outputs[attribute]["value"])

        previous = None
        while previous != value:
            previous, value = value, REFERENCE.sub(substitute, value)
        return value


@cache
def module(relative: str) -> Module:
    """Parse terraform/<relative>/*.tf into one Module."""
    path = TERRAFORM / relative
    files = sorted(path.glob("*.tf"))
    assert files, f"no .tf files in {path}"
    parsed = Module(path)
    for tf in files:
        for kind, blocks in hcl2.loads(tf.read_text(), serialization_options=OPTIONS).items():
            parsed.blocks.setdefault(kind, []).extend(blocks)
    return parsed


def module_dirs() -> list[str]:
    """Every folder of the tree holding .tf files, relative to terraform/."""
    return sorted({str(p.parent.relative_to(TERRAFORM)) for p in TERRAFORM.rglob("*.tf")})


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements of an aws_iam_policy_document, including dynamic ones."""
    found = list(document.get("statement", []))
    for dynamic in document.get("dynamic", []):
        if "statement" in dynamic:
            found.extend(block for block in dynamic["statement"]["content"])
    return found


def only(items: list[T]) -> T:
    """The single item: e.g. a nested block (python-hcl2 gives every nested block as a list)."""
    assert len(items) == 1, f"expected exactly one, got {items}"
    return items[0]
