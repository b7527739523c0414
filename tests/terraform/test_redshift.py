"""Redshift Serverless: private, enhanced VPC routing, admin password never in Terraform, COPY
role limited to the Gold layer."""

from __future__ import annotations

from tests.terraform.hcl import module, only, statements

REDSHIFT = module("modules/redshift")
PLATFORM = module("modules/platform")
WORKGROUP = REDSHIFT.resources("aws_redshiftserverless_workgroup")["this"]
NAMESPACE = REDSHIFT.resources("aws_redshiftserverless_namespace")["this"]


def test_workgroup_is_private_with_enhanced_vpc_routing() -> None:
    assert WORKGROUP["publicly_accessible"] is False
    assert WORKGROUP["enhanced_vpc_routing"] is True
    assert WORKGROUP["subnet_ids"] == "${var.subnet_ids}"
    assert PLATFORM.calls["redshift"]["subnet_ids"] == "${module.vpc.private_subnet_ids}"


def test_connections_require_tls() -> None:
    parameters = {p["parameter_key"]: p["parameter_value"] for p in WORKGROUP["config_parameter"]}
    assert parameters["require_ssl"] == "true"


def test_admin_password_is_managed_by_secrets_manager() -> None:
    assert NAMESPACE["manage_admin_password"] is True
    assert NAMESPACE["admin_password_secret_kms_key_id"] == "${var.kms_key_arn}"
    for path in ("modules/redshift", "modules/platform", "envs/dev", "envs/prod"):
        text = "".join(p.read_text() for p in module(path).path.glob("*.tf"))
        assert "admin_user_password" not in text, path


def test_namespace_is_encrypted_with_its_own_key() -> None:
    assert NAMESPACE["kms_key_id"] == "${var.kms_key_arn}"
    assert PLATFORM.calls["redshift"]["kms_key_arn"] == "${module.kms_redshift.key_arn}"


def test_sql_port_is_open_only_to_the_cluster_security_group() -> None:
    ingress = only(list(REDSHIFT.resources("aws_vpc_security_group_ingress_rule").values()))
    assert ingress["referenced_security_group_id"] == "${each.value}"
    assert "cidr_ipv4" not in ingress
    assert PLATFORM.calls["redshift"]["client_security_group_ids"] == [
        "${module.eks.cluster_security_group_id}"
    ]
    egress = only(list(REDSHIFT.resources("aws_vpc_security_group_egress_rule").values()))
    assert egress["prefix_list_id"] == "${var.s3_prefix_list_id}"
    assert (egress["from_port"], egress["to_port"]) == (443, 443)


def test_copy_role_is_the_default_role_and_only_reads_gold() -> None:
    assert NAMESPACE["default_iam_role_arn"] == "${aws_iam_role.copy.arn}"
    assert NAMESPACE["iam_roles"] == ["${aws_iam_role.copy.arn}"]
    trust = only(statements(REDSHIFT.data("aws_iam_policy_document")["copy_assume"]))
    assert only(trust["principals"])["identifiers"] == [
        "redshift.amazonaws.com",
        "redshift-serverless.amazonaws.com",
    ]
    policy = statements(REDSHIFT.data("aws_iam_policy_document")["copy"])
    actions = sorted(a for s in policy for a in s["actions"])
    assert actions == sorted(
        ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "kms:Decrypt", "kms:DescribeKey"]
    )
    assert not any(a.startswith("s3:Put") or a.startswith("s3:Delete") for a in actions)
    copy_prefixes = PLATFORM.calls["redshift"]["copy_prefixes"]
    assert [PLATFORM.resolve(p) for p in copy_prefixes] == ["lake/gold/"]


def test_compute_spend_is_capped() -> None:
    limit = REDSHIFT.resources("aws_redshiftserverless_usage_limit")["compute"]
    assert limit["usage_type"] == "serverless-compute"
    assert limit["resource_arn"] == "${aws_redshiftserverless_workgroup.this.arn}"
    dev = module("envs/dev").calls["platform"]
    assert dev["redshift_usage_limit_breach_action"] == "deactivate"
