"""Keep the chart's documentation in step with the `# --` comments of its values.yaml.

Writes two files of charts/iotpipe from those comments (helm-docs' convention: a comment that
starts with `# --` right above a key describes it, continuation lines follow it):

- README.md, rendered by helm-docs (`scripts/tools.sh helm-docs`) from README.md.gotmpl;
- values.schema.json: the `description` of every property whose key has such a comment.
  Properties with no values.yaml key of their own (list items, `$defs`, optional keys the
  defaults leave out) keep the description written in the schema.

    uv run --frozen python scripts/chart_docs.py            # write both
    uv run --frozen python scripts/chart_docs.py --check    # write nothing; exit 1 if stale

helm-docs runs offline and its output depends only on the chart's files (values in file order,
no version footer), so the result is the same on every machine. tests/charts/test_docs.py runs
the check.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "iotpipe"
# One JSON object per documented value, in values.yaml's order (helm-docs' template data).
ROWS_TEMPLATE = (
    "{{ range .Values }}"
    '{{ dict "key" .Key "description" (.Description | default .AutoDescription) | toJson }}\n'
    "{{ end }}"
)
# `a.b."c.d"[0].e` -> a, b, c.d, [0], e
_SEGMENT = re.compile(r'"([^"]*)"|([^.\[\]"]+)|\[(\d+)\]')

Schema = dict[str, Any]


class DocsError(RuntimeError):
    pass


def helm_docs_binary() -> str:
    """helm-docs on PATH, else where scripts/tools.sh builds it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iotpipe"
    cache = Path(os.environ.get("IOTPIPE_CACHE", cache))
    found = shutil.which("helm-docs") or shutil.which("helm-docs", path=str(cache / "bin"))
    if found is None:
        raise DocsError("helm-docs is not installed: run `scripts/tools.sh helm-docs`")
    return found


def helm_docs(chart: Path, template: Path) -> str:
    """helm-docs' rendering of ``template`` for ``chart``, as it would write it."""
    result = subprocess.run(
        [
            helm_docs_binary(),
            *("--chart-search-root", str(chart), "--template-files", str(template)),
            *("--sort-values-order", "file", "--skip-version-footer", "--dry-run"),
            *("--log-level", "warning"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or "level=warn" in result.stderr or "level=error" in result.stderr:
        raise DocsError(f"helm-docs failed:\n{result.stderr}")
    return result.stdout


def value_rows(chart: Path = CHART) -> list[tuple[str, str]]:
    """(key, description) of every value helm-docs documents, in values.yaml's order."""
    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "rows.gotmpl"
        template.write_text(ROWS_TEMPLATE)
        text = helm_docs(chart, template)
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [(row["key"], row["description"]) for row in rows]


def key_path(key: str) -> list[str | int]:
    """helm-docs' key as a path: names, and list indexes as ints."""
    path: list[str | int] = []
    for quoted, name, index in _SEGMENT.findall(key):
        path.append(int(index) if index else quoted or name)
    return path


def schema_property(schema: Schema, path: list[str | int]) -> Schema | None:
    """The schema of the value at ``path``: object properties and list items, following
    local `$ref`s on the way down; None where the schema has no property for it."""
    node: Schema | None = schema
    for step in path:
        node = _resolved(schema, node)
        if node is None:
            return None
        if isinstance(step, int):
            items = node.get("items")
            node = items if isinstance(items, dict) else None
        else:
            node = node.get("properties", {}).get(step)
    return node


def _resolved(schema: Schema, node: Schema | None) -> Schema | None:
    while node is not None and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise DocsError(f"only local $refs are followed, not {ref}")
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def described_schema(schema: Schema, rows: list[tuple[str, str]]) -> Schema:
    """A copy of ``schema`` in which each documented value's property has its description."""
    out = json.loads(json.dumps(schema))
    missing = []
    for key, description in rows:
        if not description:
            continue
        # a described property that is a $ref keeps the $ref: the description sits beside it
        path = key_path(key)
        node = _property_node(out, path)
        if node is None:
            if not _free_key(out, path):
                missing.append(key)
            continue
        node["description"] = description
    if missing:
        raise DocsError(
            "values.yaml documents keys that values.schema.json does not have: "
            + ", ".join(missing)
        )
    return out


def _property_node(schema: Schema, path: list[str | int]) -> Schema | None:
    """Like schema_property, but the last step is the property itself, not its $ref target."""
    if not path:
        return None
    parent = schema_property(schema, path[:-1])
    parent = _resolved(schema, parent)
    if parent is None:
        return None
    last = path[-1]
    if isinstance(last, int):
        items = parent.get("items")
        return items if isinstance(items, dict) else None
    node = parent.get("properties", {}).get(last)
    return node if isinstance(node, dict) else None


def _free_key(schema: Schema, path: list[str | int]) -> bool:
    """True for a key of a map whose keys are free (`additionalProperties`, e.g. one
    spark.medallion job): its description has no schema property to go to."""
    parent = _resolved(schema, schema_property(schema, path[:-1]))
    return (
        parent is not None
        and isinstance(path[-1], str)
        and path[-1] not in parent.get("properties", {})
        and isinstance(parent.get("additionalProperties"), dict)
    )


def undescribed(schema: Schema) -> list[str]:
    """Every property (of objects, list items and `$defs`) that has no description."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        for name, sub in node.get("properties", {}).items():
            where = f"{path}.{name}" if path else name
            if not isinstance(sub, dict) or not str(sub.get("description", "")).strip():
                found.append(where)
            walk(sub, where)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")

    walk(schema, "")
    for name, sub in schema.get("$defs", {}).items():
        walk(sub, f"$defs.{name}")
    return found


def schema_text(schema: Schema) -> str:
    return json.dumps(schema, indent=2) + "\n"


def generate(chart: Path = CHART) -> dict[Path, str]:
    """The README and schema texts the comments of ``chart``'s values.yaml make."""
    rows = value_rows(chart)
    schema = json.loads((chart / "values.schema.json").read_text())
    return {
        chart / "README.md": helm_docs(chart, chart / "README.md.gotmpl"),
        chart / "values.schema.json": schema_text(described_schema(schema, rows)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write charts/iotpipe/README.md (helm-docs) and the descriptions of "
        "values.schema.json from the `# --` comments of values.yaml."
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    parser.add_argument(
        "--chart", type=Path, default=CHART, help="the chart (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        wanted = generate(args.chart.resolve())
    except DocsError as exc:
        print(f"chart_docs: {exc}", file=sys.stderr)
        return 2
    stale = []
    for path, text in wanted.items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        stale.append(path)
        if args.check:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(path), "generated", lineterm="", n=1
            )
            print("\n".join(list(diff)[:40]), file=sys.stderr)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    if args.check and stale:
        names = ", ".join(str(p.name) for p in stale)
        print(f"chart_docs: {names} out of date: run scripts/chart_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
