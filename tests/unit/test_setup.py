"""What `make demo` installs: Python, the JVM jars and PostgreSQL, never a Go-built tool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "scripts" / "tools.sh"


def plan(target: str) -> list[str]:
    result = subprocess.run(
        [str(TOOLS), "--plan", target], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def body(function: str) -> str:
    """A shell function's body in tools.sh (up to the next line that is only ``}``)."""
    text = TOOLS.read_text()
    match = re.search(rf"^{function}\(\) {{\n(.*?)^}}", text, re.S | re.M)
    assert match, f"no function {function} in tools.sh"
    return match.group(1)


def test_the_demo_s_setup_builds_no_go_tool() -> None:
    steps = plan("demo")
    assert steps == ["system", "python_env", "jars"]
    for step in steps:
        assert not re.search(r"\bgo (install|build|mod)\b|_tool\b", body(step)), step
    assert {"tofu_tool", "helm_tool", "etcd_tool", "kube_apiserver_tool"} <= set(plan("all"))
    # The browser tests need Chromium; the demo's report is a file and needs none.
    assert "browser_tool" in plan("all")
    assert "browser_tool" not in steps


def test_make_demo_runs_the_demo_s_setup_and_not_everything() -> None:
    dry = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts/tools.sh demo" in dry
    assert "scripts/tools.sh all" not in dry


def test_uv_is_installed_without_touching_the_system_python() -> None:
    """Debian 12's Python is externally managed (PEP 668): uv goes into a venv of its own."""
    commands = [
        line for line in body("python_env").splitlines() if not line.strip().startswith("#")
    ]
    assert any("python3 -m venv" in line for line in commands)
    installs = [line for line in commands if "pip install" in line or 'pip" install' in line]
    assert installs, "uv is installed with pip"
    assert all('"$CACHE/uv-venv/bin/pip" install' in line for line in installs), installs


def test_an_unknown_target_is_refused_with_the_usage() -> None:
    result = subprocess.run([str(TOOLS), "--plan", "everything"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage:" in result.stderr


def builds_with_go(step: str) -> bool:
    one_liner = re.search(rf"^{step}\(\) {{ (.*) }}$", TOOLS.read_text(), re.M)
    text = one_liner.group(1) if one_liner else body(step)
    return bool(re.search(r"\bgo (install|build|mod)\b|go_module_build |kube-apiserver\.sh", text))


def test_go_builds_holds_every_go_build_so_ci_can_run_them_beside_the_tests() -> None:
    """.ci/run builds `go-builds` in the background while `make test` runs; a Go build that
    is missing from it would run unlocked in the foreground, beside the same build."""
    go_builds = plan("go-builds")
    every_step = {step for target in ("all", "addons") for step in plan(target)}
    every_step |= {"cluster_binaries_tool"}  # (cluster_tool's Go half, run under the lock)
    assert {step for step in every_step if builds_with_go(step)} == set(go_builds)
    assert "with_go_lock cluster_binaries_tool" in body("cluster_tool")
