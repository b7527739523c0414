"""checkov on the add-on manifests: zero failed checks (what is skipped, and why, is in
.checkov.yaml or in a `checkov.io/skip` annotation next to the resource). The add-ons'
Dockerfiles are checked with every other Dockerfile by tests/charts."""

from __future__ import annotations

import json

from tests.charts.manifests import REPO, run, tool

from .manifests import ADDONS, MANIFESTS


def test_checkov_passes_on_the_addon_manifests():
    files = [str(ADDONS / name) for name in MANIFESTS]
    result = run(
        tool("checkov"),
        *("--config-file", str(REPO / ".checkov.yaml"), "-o", "json"),
        *("--framework", "kubernetes"),
        *(a for f in files for a in ("-f", f)),
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    results = report["results"]
    # checkov parsed and checked every file (none silently skipped)
    checked = {c["file_abs_path"] for c in results["passed_checks"] + results["failed_checks"]}
    assert set(files) <= checked, checked
    failed = [
        f"{c['check_id']} {c['check_name']} -- {c['resource']}" for c in results["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
