"""The Terraform tree through the real tools: `tofu fmt`, checkov, and the values script fed by
a real `tofu output -json`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.terraform.hcl import ROOT, TERRAFORM

SKIP = re.compile(r"#\s*checkov:skip=([^\s:]+)(?::(.*))?")
# No update check; and no CLI configuration file that does not exist (tofu would print a
# warning about it on stdout, into the JSON of `tofu output -json`).
TOFU_ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if not (k == "TF_CLI_CONFIG_FILE" and not Path(v).is_file())
    },
    "CHECKPOINT_DISABLE": "1",
    "TF_IN_AUTOMATION": "1",
}


def test_tofu_fmt_check_passes(tofu: Path) -> None:
    proc = subprocess.run(
        [str(tofu), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
        env=TOFU_ENV,
    )
    assert proc.returncode == 0, f"run `tofu fmt -recursive terraform`:\n{proc.stdout}{proc.stderr}"


def test_tofu_fmt_check_catches_misformatting(tofu: Path, tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text('output "x" {\nvalue="y"\n}\n')
    proc = subprocess.run(
        [str(tofu), "fmt", "-check", "-recursive", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=TOFU_ENV,
    )
    assert proc.returncode != 0
    assert "main.tf" in proc.stdout


def test_checkov_finds_no_failed_checks(checkov: Path) -> None:
    proc = subprocess.run(
        [str(checkov), "--config-file", "terraform/.checkov.yaml", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    terraform = next(r for r in reports if r["check_type"] == "terraform")
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in terraform["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    summary = terraform["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 300, summary
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_checkov_skip_is_inline_and_justified() -> None:
    skips = []
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for check, reason in SKIP.findall(line):
                where = f"{path.relative_to(ROOT)}:{number} {check}"
                assert re.fullmatch(r"CKV2?_AWS_\d+", check), where
                assert len(reason.split()) >= 6, f"{where}: say why it is skipped"
                skips.append(check)
    assert skips, "expected the documented skips"
    config = yaml.safe_load((TERRAFORM / ".checkov.yaml").read_text())
    assert not {"skip-check", "soft-fail", "soft-fail-on"} & set(config), "no global skips"


def test_values_script_reads_a_real_tofu_output(tofu: Path, tmp_path: Path) -> None:
    """A provider-free root whose helm_values output has the shape of the real one."""
    value = json.loads((Path(__file__).with_name("outputs.json")).read_text())["helm_values"][
        "value"
    ]
    hcl_value = json.dumps(value, indent=2)
    (tmp_path / "main.tf").write_text(f'output "helm_values" {{\n  value = {hcl_value}\n}}\n')
    for command in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        proc = subprocess.run(
            [str(tofu), f"-chdir={tmp_path}", *command],
            capture_output=True,
            text=True,
            check=False,
            env=TOFU_ENV,
        )
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, str(TERRAFORM / "helm_values.py"), str(tmp_path), "--binary", str(tofu)],
        capture_output=True,
        text=True,
        check=False,
        env=TOFU_ENV,
    )
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout) == value


def test_values_script_without_state_says_so(tofu: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(TERRAFORM / "helm_values.py"), str(tmp_path), "--binary", str(tofu)],
        capture_output=True,
        text=True,
        check=False,
        env=TOFU_ENV,
    )
    assert proc.returncode == 1
    assert "helm_values" in proc.stderr
