"""Write the chart values that come from the infrastructure into a Helm values file.

Reads the `helm_values` output of an environment root (terraform/envs/dev or prod), either by
running `tofu output -json` there or from a saved JSON file, checks it, and writes YAML that
`helm upgrade --install iotpipe charts/iotpipe -f <file>` layers over the chart's defaults:

    uv run --frozen python terraform/helm_values.py terraform/envs/prod -o values-prod.yaml
    tofu -chdir=terraform/envs/prod output -json | \\
        uv run --frozen python terraform/helm_values.py --outputs - -o values-prod.yaml

Nothing secret passes through here: the warehouse password stays in Secrets Manager and the
values only name the Kubernetes Secret that holds it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OUTPUT = "helm_values"
"""Name of the env roots' output whose value is keyed exactly like charts/iotpipe/values.yaml."""

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CHECKS: dict[str, re.Pattern[str]] = {
    "global.imageRegistry": re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"),
    "lake.root": re.compile(r"^s3a://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/lake$"),
    "lake.region": re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"),
    "serviceAccounts.spark.name": re.compile(r"^iotpipe-spark$"),
    "serviceAccounts.spark.roleArn": ROLE_ARN,
    "serviceAccounts.sparkExecutor.name": re.compile(r"^iotpipe-spark-executor$"),
    "serviceAccounts.sparkExecutor.roleArn": ROLE_ARN,
    "serviceAccounts.sparkTrainer.name": re.compile(r"^iotpipe-spark-trainer$"),
    "serviceAccounts.sparkTrainer.roleArn": ROLE_ARN,
    "serviceAccounts.warehouseLoader.name": re.compile(r"^iotpipe-warehouse-loader$"),
    "serviceAccounts.warehouseLoader.roleArn": ROLE_ARN,
    "serviceAccounts.qualityGate.name": re.compile(r"^iotpipe-quality-gate$"),
    "serviceAccounts.qualityGate.roleArn": ROLE_ARN,
    "serviceAccounts.orchestrator.name": re.compile(r"^iotpipe-orchestrator$"),
    "serviceAccounts.orchestrator.roleArn": ROLE_ARN,
    "warehouse.dialect": re.compile(r"^(redshift|postgres)$"),
    "warehouse.credentialsSecret": K8S_NAME,
    "warehouse.redshift.host": re.compile(r"^[a-z0-9.-]+$"),
    "warehouse.redshift.database": re.compile(r"^[a-z_][a-z0-9_$]*$"),
    "warehouse.redshift.workgroup": re.compile(r"^[a-z0-9-]+$"),
    "warehouse.redshift.copyRoleArn": ROLE_ARN,
}
"""Every value the chart needs from Terraform, with the shape it must have."""

ROLES: tuple[tuple[str, bool, str], ...] = (
    ("serviceAccounts.sparkExecutor.roleArn", True, "serviceAccounts.spark.roleArn"),
    ("serviceAccounts.sparkTrainer.roleArn", False, "serviceAccounts.spark.roleArn"),
    ("serviceAccounts.orchestrator.roleArn", False, "serviceAccounts.spark.roleArn"),
)
"""(value, must equal?, other value): the Spark executors assume their drivers' role (they read
and write the same prefixes); the trainer's role (the one that writes `_models/`) is its own,
and so is the orchestrator's (read-only, Bronze only: the freshness check)."""


class OutputsError(ValueError):
    """The outputs are missing, incomplete or malformed; the message says which and why."""


def _get(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise OutputsError(f"{OUTPUT}.{dotted} is missing")
        node = node[key]
    return node


def helm_values(outputs: dict[str, Any]) -> dict[str, Any]:
    """The checked chart values from a parsed `tofu output -json` document."""
    if OUTPUT not in outputs:
        found = ", ".join(sorted(outputs)) or "no outputs at all (was `tofu apply` run?)"
        raise OutputsError(f"output {OUTPUT!r} not found; the root has {found}")
    output = outputs[OUTPUT]
    if not isinstance(output, dict) or "value" not in output:
        raise OutputsError(f"output {OUTPUT!r} is not in `tofu output -json` form")
    if output.get("sensitive"):
        raise OutputsError(f"output {OUTPUT!r} is marked sensitive: it must never carry secrets")
    values = output["value"]
    if not isinstance(values, dict):
        raise OutputsError(f"output {OUTPUT!r} is not an object")
    problems = []
    for dotted, pattern in CHECKS.items():
        try:
            value = _get(values, dotted)
        except OutputsError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append(f"{OUTPUT}.{dotted} = {value!r} does not look like {pattern.pattern}")
    for dotted, same, other in ROLES:
        try:
            value, reference = _get(values, dotted), _get(values, other)
        except OutputsError:
            continue  # reported above
        if (value == reference) != same:
            relation = "must be" if same else "must differ from"
            problems.append(f"{OUTPUT}.{dotted} = {value!r} {relation} {other} ({reference!r})")
    try:
        port = _get(values, "warehouse.redshift.port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            problems.append(f"{OUTPUT}.warehouse.redshift.port = {port!r} is not a TCP port")
    except OutputsError as exc:
        problems.append(str(exc))
    if problems:
        raise OutputsError("; ".join(problems))
    return values


def render(values: dict[str, Any], source: str) -> str:
    header = (
        f"# Generated by terraform/helm_values.py from the {OUTPUT!r} output of {source}.\n"
        "# Do not edit: change Terraform and regenerate. Layer it over the chart's defaults:\n"
        "#   helm upgrade --install iotpipe charts/iotpipe -n iotpipe -f <this file>\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False, default_flow_style=False)


def tofu_outputs(env_dir: Path, binary: str | None) -> dict[str, Any]:
    """`tofu output -json` of an initialised root (its state holds the outputs)."""
    cached = Path(os.environ.get("IOTPIPE_CACHE", Path.home() / ".cache/iotpipe")) / "bin/tofu"
    exe = binary or shutil.which("tofu") or (str(cached) if cached.exists() else None)
    exe = exe or shutil.which("terraform")
    if exe is None:
        raise OutputsError("neither tofu nor terraform found: run scripts/tools.sh tofu")
    proc = subprocess.run(
        [exe, f"-chdir={env_dir}", "output", "-json"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise OutputsError(f"{exe} output failed in {env_dir}: {proc.stderr.strip()}")
    try:
        result: dict[str, Any] = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise OutputsError(
            f"{exe} output -json printed more than JSON (a CLI warning? check TF_CLI_CONFIG_FILE): "
            f"{proc.stdout[:200]!r}"
        ) from exc
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write the Helm values that come from Terraform outputs (charts/iotpipe).",
    )
    parser.add_argument("env_dir", nargs="?", type=Path, help="env root, e.g. terraform/envs/prod")
    parser.add_argument(
        "--outputs", metavar="FILE", help="saved `tofu output -json` document ('-' for stdin)"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="values file to write (default: stdout)"
    )
    parser.add_argument("--binary", help="tofu or terraform executable (default: tofu on PATH)")
    args = parser.parse_args(argv)
    if (args.env_dir is None) == (args.outputs is None):
        parser.error("give either an env root or --outputs FILE")
    try:
        if args.outputs is not None:
            source = "stdin" if args.outputs == "-" else args.outputs
            text = sys.stdin.read() if args.outputs == "-" else Path(args.outputs).read_text()
            try:
                outputs = json.loads(text)
            except json.JSONDecodeError as exc:
                raise OutputsError(f"{source} is not JSON: {exc}") from exc
        else:
            source = str(args.env_dir)
            outputs = tofu_outputs(args.env_dir, args.binary)
        if not isinstance(outputs, dict):
            raise OutputsError(f"{source} is not a `tofu output -json` document")
        text = render(helm_values(outputs), source)
    except (OutputsError, OSError) as exc:
        print(f"helm_values: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
