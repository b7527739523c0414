"""IAM roles for service accounts: trust pinned to one exact service account in namespace
iotpipe, least-privilege lake access per workload, no roles for workloads without AWS access."""

from __future__ import annotations

from typing import Any

import pytest

from tests.terraform.hcl import TERRAFORM, module, only, statements

IRSA = module("modules/irsa")
PLATFORM = module("modules/platform")
LAKE_POLICY = module("modules/lake-policy")

# The chart's conventions (charts/iotpipe values serviceAccounts.<key>.name).
AWS_WORKLOADS = {
    "spark": "iotpipe-spark",
    "warehouseLoader": "iotpipe-warehouse-loader",
    "qualityGate": "iotpipe-quality-gate",
}
NO_AWS_ACCESS = ["iotpipe-sensor-simulator", "iotpipe-dlq-inspector", "iotpipe-orchestrator"]


def _trust() -> dict[str, Any]:
    return only(statements(IRSA.data("aws_iam_policy_document")["trust"]))


def test_trust_is_web_identity_from_the_cluster_oidc_provider_only() -> None:
    trust = _trust()
    assert trust.get("effect", "Allow") == "Allow"
    assert trust["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert only(trust["principals"]) == {
        "type": "Federated",
        "identifiers": ["${var.oidc_provider_arn}"],
    }


def test_trust_pins_subject_and_audience_with_string_equals() -> None:
    conditions = {c["variable"]: c for c in _trust()["condition"]}
    assert set(conditions) == {"${var.oidc_issuer_host}:sub", "${var.oidc_issuer_host}:aud"}
    assert all(c["test"] == "StringEquals" for c in conditions.values())
    subject = only(conditions["${var.oidc_issuer_host}:sub"]["values"])
    assert IRSA.resolve(subject) == "system:serviceaccount:${var.namespace}:${var.service_account}"
    assert conditions["${var.oidc_issuer_host}:aud"]["values"] == ["sts.amazonaws.com"]


def test_service_account_names_cannot_be_wildcards() -> None:
    validation = only(IRSA.variables["service_account"]["validation"])
    assert "regex" in validation["condition"]
    assert "*" not in validation["condition"].split('"')[1].replace("[-a-z0-9]*", "")


def test_platform_creates_roles_for_exactly_the_aws_workloads() -> None:
    workloads = only([b for b in PLATFORM.blocks["locals"] if "workloads" in b])["workloads"]
    assert {key: w["service_account"] for key, w in workloads.items()} == AWS_WORKLOADS
    call = PLATFORM.calls["irsa"]
    assert call["for_each"] == "${local.workloads}"
    assert call["service_account"] == "${each.value.service_account}"
    assert call["namespace"] == "${var.namespace}"
    assert PLATFORM.default("namespace") == "iotpipe"
    text = "".join(p.read_text() for p in TERRAFORM.rglob("*.tf"))
    for name in NO_AWS_ACCESS:
        assert name not in text, f"{name} must not get an AWS role"


@pytest.mark.parametrize(
    ("policy", "reads", "writes"),
    [
        ("spark_policy", ["lake/"], ["lake/"]),
        ("quality_gate_policy", ["lake/"], ["lake/_quality/"]),
        ("warehouse_loader_policy", ["lake/gold/"], []),
    ],
)
def test_lake_access_is_scoped_by_prefix(policy: str, reads: list[str], writes: list[str]) -> None:
    call = PLATFORM.calls[policy]
    assert call["source"] == "../lake-policy"
    assert [PLATFORM.resolve(p) for p in call["read_prefixes"]] == reads
    assert [PLATFORM.resolve(p) for p in call.get("write_prefixes", [])] == writes


def test_lake_policy_never_grants_wildcards() -> None:
    document = LAKE_POLICY.data("aws_iam_policy_document")["this"]
    for statement in statements(document):
        actions, resources = (
            value if isinstance(value, str) else " ".join(value)
            for value in (statement["actions"], statement["resources"])
        )
        assert "s3:*" not in actions, statement["sid"]
        assert "kms:*" not in actions, statement["sid"]
        assert resources != "*", statement["sid"]
        assert '"*"' not in resources, statement["sid"]
        assert "${var.bucket_arn}" in resources or resources == "${var.kms_key_arn}", statement[
            "sid"
        ]
    objects = [
        s["resources"] for s in statements(document) if s["sid"] in {"ReadObjects", "WriteObjects"}
    ]
    assert len(objects) == 2
    assert all('"${var.bucket_arn}/${p}*"' in r for r in objects), "objects only under a prefix"
    listing = only([s for s in statements(document) if s["sid"] == "ListOwnPrefixes"])
    assert only(listing["condition"])["variable"] == "s3:prefix"
    prefix_rule = only(LAKE_POLICY.variables["read_prefixes"]["validation"])
    assert 'endswith(p, "/")' in prefix_rule["condition"]


def test_loader_reads_gold_and_runs_sql_without_the_admin_password() -> None:
    warehouse = statements(PLATFORM.data("aws_iam_policy_document")["warehouse"])
    actions = {a for s in warehouse for a in s["actions"]}
    assert "redshift-serverless:GetCredentials" in actions
    assert not any(a.startswith("secretsmanager:") for a in actions)
    sql = only([s for s in warehouse if s["sid"] == "WorkgroupSql"])
    assert sql["resources"] == ["${module.redshift.workgroup_arn}"]
    own = only([s for s in warehouse if s["sid"] == "OwnStatements"])
    assert only(own["condition"])["values"] == ["$${aws:userid}"]
