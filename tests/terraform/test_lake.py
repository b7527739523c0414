"""The S3 lake: encryption with our own rotating key, versioning, no public access, TLS only,
lifecycle rules that match the lake layout of iotpipe.lake."""

from __future__ import annotations

from typing import Any

import pytest

from iotpipe.lake import Lake
from tests.terraform.hcl import module, only, statements

LAKE = module("modules/lake")
PLATFORM = module("modules/platform")
BUCKETS = sorted(LAKE.resources("aws_s3_bucket"))


def _for_bucket(type_: str, bucket: str) -> dict[str, Any]:
    """The configuration resource of `type_` attached to aws_s3_bucket.<bucket>."""
    matches = [
        body
        for body in LAKE.resources(type_).values()
        if body["bucket"] == f"${{aws_s3_bucket.{bucket}.id}}"
    ]
    assert len(matches) == 1, f"aws_s3_bucket.{bucket} needs exactly one {type_}"
    return matches[0]


def _lifecycle_rule(rule_id: str) -> dict[str, Any]:
    rules = _for_bucket("aws_s3_bucket_lifecycle_configuration", "lake")["rule"]
    return only([r for r in rules if r["id"] == rule_id])


def _prefix(rule: dict[str, Any]) -> str:
    filter_ = only(rule["filter"])
    if "and" in filter_:
        filter_ = only(filter_["and"])
    return LAKE.resolve(filter_["prefix"])


def test_both_buckets_are_declared() -> None:
    assert BUCKETS == ["lake", "logs"]


def test_lake_uses_sse_kms_with_the_customer_managed_rotating_key() -> None:
    sse = _for_bucket("aws_s3_bucket_server_side_encryption_configuration", "lake")
    default = only(only(sse["rule"])["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == "${var.kms_key_arn}"
    assert only(sse["rule"])["bucket_key_enabled"] is True
    # The platform hands the lake its own key from the kms module, which always rotates.
    assert PLATFORM.calls["lake"]["kms_key_arn"] == "${module.kms_lake.key_arn}"
    assert PLATFORM.calls["kms_lake"]["source"] == "../kms"
    key = module("modules/kms").resources("aws_kms_key")["this"]
    assert key["enable_key_rotation"] is True


def test_access_log_bucket_is_encrypted_too() -> None:
    sse = _for_bucket("aws_s3_bucket_server_side_encryption_configuration", "logs")
    default = only(only(sse["rule"])["apply_server_side_encryption_by_default"])
    # Server access logs can only be delivered to SSE-S3 buckets.
    assert default["sse_algorithm"] == "AES256"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_versioning_is_enabled(bucket: str) -> None:
    versioning = _for_bucket("aws_s3_bucket_versioning", bucket)
    assert only(versioning["versioning_configuration"])["status"] == "Enabled"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_public_access_is_blocked_and_acls_are_off(bucket: str) -> None:
    block = _for_bucket("aws_s3_bucket_public_access_block", bucket)
    for setting in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert block[setting] is True, setting
    ownership = _for_bucket("aws_s3_bucket_ownership_controls", bucket)
    assert only(ownership["rule"])["object_ownership"] == "BucketOwnerEnforced"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_policy_denies_every_request_without_tls(bucket: str) -> None:
    policy = _for_bucket("aws_s3_bucket_policy", bucket)
    document = (
        policy["policy"].removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
    )
    deny_plain_http = [
        s
        for s in statements(LAKE.data("aws_iam_policy_document")[document])
        if s.get("effect") == "Deny"
        and any(
            c["test"] == "Bool"
            and c["variable"] == "aws:SecureTransport"
            and c["values"] == ["false"]
            for c in s.get("condition", [])
        )
    ]
    statement = only(deny_plain_http)
    assert statement["actions"] == ["s3:*"]
    assert only(statement["principals"]) == {"type": "*", "identifiers": ["*"]}
    arn = f"${{aws_s3_bucket.{bucket}.arn}}"
    assert sorted(statement["resources"]) == sorted([arn, f"{arn}/*"])


def test_no_statement_allows_anonymous_principals() -> None:
    for name, document in LAKE.data("aws_iam_policy_document").items():
        for statement in statements(document):
            if statement.get("effect", "Allow") == "Allow":
                for principal in statement.get("principals", []):
                    assert principal["identifiers"] != ["*"], name


def test_lake_accepts_only_its_own_kms_key() -> None:
    document = LAKE.data("aws_iam_policy_document")["lake"]
    denied = {
        c["variable"]: c["values"]
        for s in statements(document)
        if s.get("effect") == "Deny"
        for c in s.get("condition", [])
    }
    assert denied["s3:x-amz-server-side-encryption"] == ["aws:kms"]
    assert denied["s3:x-amz-server-side-encryption-aws-kms-key-id"] == ["${var.kms_key_arn}"]
    assert denied["s3:TlsVersion"] == ["1.2"]


def test_lifecycle_prefixes_are_the_lake_layout() -> None:
    lake = Lake("s3a://bucket/lake")
    in_bucket = lake.root.removeprefix("s3a://bucket/") + "/"
    assert LAKE.resolve("${local.lake_prefix}") == in_bucket
    assert LAKE.outputs["root"]["value"] == "s3a://${aws_s3_bucket.lake.id}/lake"
    assert f"s3a://bucket/{_prefix(_lifecycle_rule('bronze-to-glacier'))}" == lake.path("bronze/")
    assert lake.checkpoint("bronze_stream").startswith(
        f"s3a://bucket/{_prefix(_lifecycle_rule('checkpoint-garbage'))}"
    )


def test_old_bronze_moves_to_glacier() -> None:
    rule = _lifecycle_rule("bronze-to-glacier")
    assert rule["status"] == "Enabled"
    transition = only(rule["transition"])
    assert transition["days"] == "${var.bronze_glacier_after_days}"
    assert transition["storage_class"] == "${var.bronze_glacier_storage_class}"
    assert LAKE.default("bronze_glacier_storage_class").startswith("GLACIER")
    assert LAKE.default("bronze_glacier_after_days") >= 30
    for env in ("dev", "prod"):
        days = module(f"envs/{env}").calls["platform"]["bronze_glacier_after_days"]
        assert 30 <= days <= 365, env


def test_checkpoint_garbage_expires_but_live_checkpoints_never_do() -> None:
    rule = _lifecycle_rule("checkpoint-garbage")
    assert rule["status"] == "Enabled"
    assert only(rule["noncurrent_version_expiration"])["noncurrent_days"] == (
        "${var.checkpoint_garbage_expiration_days}"
    )
    assert 1 <= LAKE.default("checkpoint_garbage_expiration_days") <= 7
    expiration = only(rule["expiration"])
    assert expiration == {"expired_object_delete_marker": True}, (
        "expiring current checkpoint objects by age would break streaming recovery"
    )


def test_every_rule_aborts_or_expires_something_and_uploads_are_cleaned() -> None:
    rules = _for_bucket("aws_s3_bucket_lifecycle_configuration", "lake")["rule"]
    catch_all = only([r for r in rules if only(r["filter"]) == {}])
    assert "noncurrent_version_expiration" in catch_all
    assert "abort_incomplete_multipart_upload" in catch_all


def test_server_access_logs_are_kept() -> None:
    logging = LAKE.resources("aws_s3_bucket_logging")["lake"]
    assert logging["target_bucket"] == "${aws_s3_bucket.logs.id}"
