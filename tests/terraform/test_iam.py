"""IAM roles for service accounts: trust pinned to exact service accounts in namespace
iotpipe, least-privilege lake access per workload, no roles for workloads without AWS access."""

from __future__ import annotations

from typing import Any

import pytest

from iotpipe.lake import Lake
from tests.terraform.hcl import TERRAFORM, module, only, statements

IRSA = module("modules/irsa")
PLATFORM = module("modules/platform")
LAKE_POLICY = module("modules/lake-policy")

# The chart's conventions (charts/iotpipe values serviceAccounts.<key>.name), by the role
# (workload) each assumes: the Spark executors share their drivers' role.
AWS_WORKLOADS = {
    "spark": {"spark": "iotpipe-spark", "sparkExecutor": "iotpipe-spark-executor"},
    "sparkTrainer": {"sparkTrainer": "iotpipe-spark-trainer"},
    "warehouseLoader": {"warehouseLoader": "iotpipe-warehouse-loader"},
    "qualityGate": {"qualityGate": "iotpipe-quality-gate"},
    # the freshness check reads Bronze's partitions and its sink log (orchestrator.freshness)
    "orchestrator": {"orchestrator": "iotpipe-orchestrator"},
}
NO_AWS_ACCESS = ["iotpipe-sensor-simulator", "iotpipe-dlq-inspector"]
# What the Spark jobs write under the lake root (iotpipe.lake.Lake; spark_jobs.bronze_stream's
# per-minute summary is Lake.path("streaming", ...)), and what only the gate and the trainer do.
SPARK_WRITES = ["bronze/", "silver/", "gold/", "dlq/", "streaming/", "_checkpoints/"]
GATE_ONLY, TRAINER_ONLY = "_quality/", "_models/"


def _workloads() -> dict[str, Any]:
    workloads: dict[str, Any] = only([b for b in PLATFORM.blocks["locals"] if "workloads" in b])[
        "workloads"
    ]
    return workloads


def _writes(policy: str) -> list[str]:
    """The lake prefixes a policy module call of the platform lets its role write."""
    return [PLATFORM.resolve(p) for p in PLATFORM.calls[policy].get("write_prefixes", [])]


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
    subjects = conditions["${var.oidc_issuer_host}:sub"]["values"]
    assert subjects == "${local.subjects}"
    assert IRSA.locals["subjects"] == (
        '${[for account in var.service_accounts : "system:serviceaccount:${var.namespace}:${account}"]}'
    )
    assert conditions["${var.oidc_issuer_host}:aud"]["values"] == ["sts.amazonaws.com"]


def test_service_account_names_cannot_be_wildcards() -> None:
    validation = only(IRSA.variables["service_accounts"]["validation"])
    assert "length(var.service_accounts) > 0" in validation["condition"]
    assert "alltrue([for account in var.service_accounts : can(regex(" in validation["condition"]
    assert "*" not in validation["condition"].split('"')[1].replace("[-a-z0-9]*", "")


def test_platform_creates_roles_for_exactly_the_aws_workloads() -> None:
    workloads = _workloads()
    assert {key: w["service_accounts"] for key, w in workloads.items()} == AWS_WORKLOADS
    assert {w["role"] for w in workloads.values()} == {
        "spark", "spark-trainer", "warehouse-loader", "quality-gate", "orchestrator"
    }  # fmt: skip
    call = PLATFORM.calls["irsa"]
    assert call["for_each"] == "${local.workloads}"
    assert call["role_name"] == "${local.name}-${each.value.role}"
    assert call["service_accounts"] == "${values(each.value.service_accounts)}"
    assert call["namespace"] == "${var.namespace}"
    assert PLATFORM.default("namespace") == "iotpipe"
    text = "".join(p.read_text() for p in TERRAFORM.rglob("*.tf"))
    for name in NO_AWS_ACCESS:
        assert name not in text, f"{name} must not get an AWS role"


def test_spark_executors_can_assume_the_spark_role_and_nothing_else_shares_a_role() -> None:
    """The Spark role's trust admits the drivers and the executors (one workload: the same lake
    access); every other role admits exactly one account, and no account is in two roles."""
    workloads = _workloads()
    assert set(workloads["spark"]["service_accounts"].values()) == {
        "iotpipe-spark",
        "iotpipe-spark-executor",
    }
    assert workloads["spark"]["policy_json"] == "${module.spark_policy.json}"
    for key, workload in workloads.items():
        if key != "spark":
            assert len(workload["service_accounts"]) == 1, key
    accounts = [a for w in workloads.values() for a in w["service_accounts"].values()]
    assert len(accounts) == len(set(accounts))
    # The chart's serviceAccounts.<key> -> (account, the workload whose role it assumes).
    assert PLATFORM.locals["service_accounts"] == (
        "${merge([for workload, w in local.workloads : {for key, account in w.service_accounts"
        " : key => {name = account, workload = workload}}] ...)}"
    )


@pytest.mark.parametrize(
    ("policy", "reads", "writes"),
    [
        ("spark_policy", ["lake/"], [f"lake/{p}" for p in SPARK_WRITES]),
        ("spark_trainer_policy", ["lake/"], ["lake/_models/"]),
        ("quality_gate_policy", ["lake/"], ["lake/_quality/"]),
        ("warehouse_loader_policy", ["lake/gold/"], []),
        ("orchestrator_policy", ["lake/bronze/"], []),
    ],
)
def test_lake_access_is_scoped_by_prefix(policy: str, reads: list[str], writes: list[str]) -> None:
    call = PLATFORM.calls[policy]
    assert call["source"] == "../lake-policy"
    assert [PLATFORM.resolve(p) for p in call["read_prefixes"]] == reads
    assert _writes(policy) == writes
    assert f"${{module.{policy}.json}}" in {w["policy_json"] for w in _workloads().values()}


def test_spark_cannot_write_verdicts_or_models() -> None:
    """Spark's role writes what the jobs write and nothing that would let it forge a quality
    verdict (_quality/) or plant a model bronze_to_silver unpickles (_models/): no prefix of
    it covers them, not the lake root either. Only the gate writes _quality/, only the trainer
    _models/."""
    lake = Lake("s3a://bucket/lake")
    writes = _writes("spark_policy")
    for prefix in writes:
        for forbidden in (GATE_ONLY, TRAINER_ONLY):
            assert not f"lake/{forbidden}".startswith(prefix), f"{prefix} covers {forbidden}"
    # The prefixes are the lake layout's (iotpipe.lake.Lake under s3a://bucket/lake).
    paths = [lake.bronze, lake.silver, lake.gold_windows, lake.gold_location_hourly]
    paths += [
        lake.gold_daily,
        lake.dlq,
        lake.path("streaming", "x"),
        lake.checkpoint("bronze_stream"),
    ]
    for path in paths:
        assert any(f"{path}/".startswith(f"s3a://bucket/{p}") for p in writes), path
    assert f"{lake.quality}/" == f"s3a://bucket/lake/{GATE_ONLY}"
    assert f"{lake.models}/" == f"s3a://bucket/lake/{TRAINER_ONLY}"
    policies = [name for name, call in PLATFORM.calls.items() if call["source"] == "../lake-policy"]
    writers = {
        target: [p for p in policies if any(f"lake/{target}".startswith(w) for w in _writes(p))]
        for target in (GATE_ONLY, TRAINER_ONLY)
    }
    assert writers == {GATE_ONLY: ["quality_gate_policy"], TRAINER_ONLY: ["spark_trainer_policy"]}
    assert _writes("spark_trainer_policy") == [f"lake/{TRAINER_ONLY}"]


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


def test_the_orchestrator_reads_exactly_bronze_and_its_sink_log_and_writes_nothing() -> None:
    """The freshness check lists Bronze's partitions (ListBucket under the prefix) and reads
    ``_spark_metadata`` (GetObject) to know which files are committed, decrypting with the
    lake key; no other layer, no write, no key to encrypt with."""
    call = PLATFORM.calls["orchestrator_policy"]
    assert call["source"] == "../lake-policy"
    assert call["bucket_arn"] == "${module.lake.bucket_arn}"
    assert call["kms_key_arn"] == "${module.kms_lake.key_arn}"
    assert set(call) == {"source", "bucket_arn", "kms_key_arn", "read_prefixes"}  # no writes
    [prefix] = [PLATFORM.resolve(p) for p in call["read_prefixes"]]
    lake = Lake("s3a://bucket/lake")
    for path in (lake.bronze, f"{lake.bronze}/_spark_metadata/0", f"{lake.bronze}/event_date=x"):
        assert path.startswith(f"s3a://bucket/{prefix}"), path
    for other in (lake.silver, lake.gold_windows, lake.dlq, lake.quality, lake.models):
        assert not f"{other}/".startswith(f"s3a://bucket/{prefix}"), other
    assert not lake.checkpoint("bronze_stream").startswith(f"s3a://bucket/{prefix}")
    assert _workloads()["orchestrator"]["policy_json"] == "${module.orchestrator_policy.json}"
    # A policy without write prefixes grants no write action and only decrypts.
    document = LAKE_POLICY.data("aws_iam_policy_document")["this"]
    by_sid = {s["sid"]: s for s in statements(document)}
    assert LAKE_POLICY.locals["can_write"] == "${length(var.write_prefixes) > 0}"
    writes = [d["statement"] for d in document["dynamic"]]
    assert {only(w["content"])["sid"] for w in writes} == {"WriteObjects", "ListUploads"}
    assert all(w["for_each"] == "${local.can_write ? [1] : []}" for w in writes)
    assert by_sid["UseLakeKey"]["actions"] == (
        '${local.can_write ? ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]'
        ' : ["kms:Decrypt", "kms:DescribeKey"]}'
    )
    assert by_sid["ReadObjects"]["actions"] == ["s3:GetObject"]
    assert by_sid["ListOwnPrefixes"]["actions"] == ["s3:ListBucket"]
