"""checkov on the rendered manifests (every profile), the plain manifests in k8s/ and
spark-operator/, and every Dockerfile: zero failed checks. What is skipped, and why, is
written in .checkov.yaml at the repo root (or in a `checkov:skip=<id>:<reason>` comment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .manifests import LOCAL_MANIFESTS, PROFILES, REPO, _render, dockerfiles, run, tool


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory) -> dict[str, list[dict]]:
    """One checkov run over everything (it takes ~20 s to start): failed checks per file."""
    folder = tmp_path_factory.mktemp("rendered")
    files: list[Path] = []
    for profile, values_files in PROFILES.items():
        path = folder / f"chart-{profile}.yaml"
        path.write_text(_render(values_files, ()))
        files.append(path)
    files += [REPO / name for name in LOCAL_MANIFESTS] + dockerfiles()
    args = [a for f in files for a in ("-f", str(f))]
    result = run(
        tool("checkov"),
        *("--config-file", str(REPO / ".checkov.yaml"), "-o", "json"),
        *("--framework", "kubernetes", "dockerfile"),
        *args,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]

    def owner(check: dict) -> str:
        return str(Path(check["file_abs_path"]).resolve())

    files = [f.resolve() for f in files]

    by_file: dict[str, list[dict]] = {str(f): [] for f in files}
    checked = dict.fromkeys(by_file, 0)
    for report in reports:
        results = report.get("results", {})
        for check in results.get("passed_checks", []) + results.get("failed_checks", []):
            checked[owner(check)] += 1
        for check in results.get("failed_checks", []):
            by_file[owner(check)].append(check)
    # checkov looked at every workload file and Dockerfile (none silently unparsed); a
    # Namespace alone has nothing to check.
    for name, count in checked.items():
        assert count > 0 or name.endswith("namespace.yaml"), f"checkov checked nothing in {name}"
    return by_file


def describe(failed: list[dict]) -> str:
    return "\n".join(f"{c['check_id']} {c['check_name']} -- {c['resource']}" for c in failed)


@pytest.mark.parametrize("profile", PROFILES)
def test_checkov_passes_on_the_rendered_chart(checkov_report, profile):
    failed = next(v for k, v in checkov_report.items() if k.endswith(f"chart-{profile}.yaml"))
    assert not failed, describe(failed)


def test_checkov_passes_on_the_dockerfiles_and_local_manifests(checkov_report):
    failed = [c for name, checks in checkov_report.items() if "/chart-" not in name for c in checks]
    assert not failed, describe(failed)
