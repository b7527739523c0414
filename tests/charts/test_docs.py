"""The chart documents itself from the `# --` comments of its values.yaml: the generated
README.md (helm-docs) and the descriptions in values.schema.json are current
(scripts/chart_docs.py), every value and every schema property is described, and the two agree.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from .manifests import CHART, REPO

SCRIPT = REPO / "scripts" / "chart_docs.py"


def chart_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_docs", SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.helm_docs_binary()
    except module.DocsError as exc:
        pytest.fail(str(exc))
    return module


def test_the_committed_readme_and_schema_descriptions_are_current():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_value_and_every_schema_property_is_described():
    docs = chart_docs()
    rows = docs.value_rows()
    assert len(rows) > 150
    assert [key for key, description in rows if not description] == []
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert docs.undescribed(schema) == []


def test_schema_descriptions_are_the_values_comments():
    docs = chart_docs()
    schema = json.loads((CHART / "values.schema.json").read_text())
    checked = 0
    for key, description in docs.value_rows():
        path = docs.key_path(key)
        node = docs._property_node(schema, path)
        if node is None:  # a key of a free map (one spark.medallion job)
            assert docs._free_key(schema, path), key
            continue
        assert node["description"] == description, key
        checked += 1
    assert checked > 150
    # e.g. the reason the stateful services run one replica reaches the schema from values.yaml
    values = (CHART / "values.yaml").read_text()
    replicas = schema["properties"]["dlqInspector"]["properties"]["replicas"]["description"]
    assert replicas.split(":")[0] in values


def test_readme_lists_every_documented_value_with_its_default():
    docs = chart_docs()
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for key, description in docs.value_rows():
        assert f"| {key} |" in readme, key
        assert description.split("`")[0][:40] in readme, key
    assert f"`{json.dumps(values['kafka']['port'])}`" in readme
    assert "helm test" in readme
    assert "iotpipe maintainers" in readme  # Chart.yaml's maintainers


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "iotpipe"
    shutil.copytree(CHART, copy, symlinks=False)
    return copy


def test_a_changed_comment_makes_the_check_fail_until_regenerated(chart_copy: Path):
    docs = chart_docs()
    values = chart_copy / "values.yaml"
    old = "# -- Port of the TLS + SCRAM-SHA-512 listener clients use"
    assert old in values.read_text()
    values.write_text(values.read_text().replace(old, "# -- The listener's port, changed"))
    assert docs.main(["--check", "--chart", str(chart_copy)]) == 1
    assert docs.main(["--chart", str(chart_copy)]) == 0
    assert docs.main(["--check", "--chart", str(chart_copy)]) == 0
    schema = json.loads((chart_copy / "values.schema.json").read_text())
    port = schema["properties"]["kafka"]["properties"]["port"]["description"]
    assert port.startswith("The listener's port, changed")
    assert (
        "| kafka.port | int | `9093` | The listener's port, changed"
        in (chart_copy / "README.md").read_text()
    )


def test_a_comment_on_a_key_the_schema_lacks_is_an_error(chart_copy: Path, capsys):
    docs = chart_docs()
    values = chart_copy / "values.yaml"
    values.write_text(values.read_text() + "# -- Not in the schema.\nmisspelt: 1\n")
    assert docs.main(["--check", "--chart", str(chart_copy)]) == 2
    assert "misspelt" in capsys.readouterr().err


def test_the_generator_is_deterministic():
    docs = chart_docs()
    assert docs.generate() == docs.generate()
    assert docs.key_path('kafka.topics.events.config."retention.ms"') == [
        "kafka",
        "topics",
        "events",
        "config",
        "retention.ms",
    ]
    assert docs.key_path("a.b[2].c") == ["a", "b", 2, "c"]
