"""EKS, node groups, KMS keys and ECR repositories."""

from __future__ import annotations

from tests.terraform.hcl import module, module_dirs, only

EKS = module("modules/eks")
CLUSTER = EKS.resources("aws_eks_cluster")["this"]
PLATFORM = module("modules/platform")
IMAGES = [
    "sensor-simulator",
    "dlq-inspector",
    "quality-gate",
    "warehouse-loader",
    "orchestrator",
    "spark",
]


def test_every_kms_key_rotates_and_has_a_policy() -> None:
    keys = [
        (path, name, key)
        for path in module_dirs()
        for name, key in module(path).resources("aws_kms_key").items()
    ]
    assert keys, "no KMS keys found"
    for path, name, key in keys:
        assert key["enable_key_rotation"] is True, f"{path}: aws_kms_key.{name}"
        assert "policy" in key, f"{path}: aws_kms_key.{name}"
    kms_calls = [call for call in PLATFORM.calls.values() if call["source"] == "../kms"]
    assert len(kms_calls) == 5


def test_kubernetes_secrets_are_encrypted_with_kms() -> None:
    encryption = only(CLUSTER["encryption_config"])
    assert encryption["resources"] == ["secrets"]
    assert only(encryption["provider"])["key_arn"] == "${var.kms_key_arn}"


def test_api_endpoint_is_private_unless_cidrs_are_opened() -> None:
    vpc = only(CLUSTER["vpc_config"])
    assert vpc["endpoint_private_access"] is True
    assert vpc["endpoint_public_access"] == "${length(var.public_access_cidrs) > 0}"
    assert EKS.default("public_access_cidrs") == []
    assert "0.0.0.0/0" in only(EKS.variables["public_access_cidrs"]["validation"])["condition"]


def test_all_control_plane_logs_are_on() -> None:
    assert sorted(CLUSTER["enabled_cluster_log_types"]) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )


def test_node_groups_system_on_demand_and_spark_on_tainted_spot() -> None:
    pools = only([b for b in EKS.blocks["locals"] if "node_pools" in b])["node_pools"]
    assert pools["system"]["capacity_type"] == "ON_DEMAND"
    assert pools["system"]["taints"] == []
    assert pools["spark-spot"]["capacity_type"] == "SPOT"
    assert len(EKS.default("spark_instance_types")) >= 3
    taint = only(pools["spark-spot"]["taints"])
    assert taint["effect"] == "NO_SCHEDULE"


def test_nodes_require_imdsv2_with_hop_limit_one() -> None:
    template = EKS.resources("aws_launch_template")["node"]
    metadata = only(template["metadata_options"])
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1
    ebs = only(only(template["block_device_mappings"])["ebs"])
    assert ebs["encrypted"] is True


def test_core_addons_are_managed() -> None:
    addons = only([b for b in EKS.blocks["locals"] if "addons" in b])["addons"]
    assert {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"} <= set(addons)


def test_ecr_repositories_are_immutable_scanned_and_kms_encrypted() -> None:
    repo = module("modules/ecr").resources("aws_ecr_repository")["this"]
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert only(repo["image_scanning_configuration"])["scan_on_push"] is True
    encryption = only(repo["encryption_configuration"])
    assert encryption["encryption_type"] == "KMS"
    assert encryption["kms_key"] == "${var.kms_key_arn}"
    assert "aws_ecr_lifecycle_policy" in str(module("modules/ecr").blocks["resource"])


def test_ecr_repositories_are_the_chart_images() -> None:
    platform_locals = only([b for b in PLATFORM.blocks["locals"] if "images" in b])
    assert platform_locals["images"] == IMAGES
    assert (
        PLATFORM.calls["ecr"]["repositories"]
        == '${[for image in local.images : "iotpipe/${image}"]}'
    )


def test_vpc_has_private_subnets_nat_and_closed_default_security_group() -> None:
    vpc = module("modules/vpc")
    assert vpc.resources("aws_subnet")["public"]["map_public_ip_on_launch"] is False
    assert "aws_nat_gateway" in str(vpc.blocks["resource"])
    assert vpc.resources("aws_default_security_group")["this"].keys() == {"vpc_id", "tags"}
    assert vpc.resources("aws_flow_log")["this"]["traffic_type"] == "ALL"


def test_provider_versions_are_pinned_in_every_root_and_module() -> None:
    for path in module_dirs():
        terraform = only(module(path).blocks["terraform"])
        aws = only(terraform["required_providers"])["aws"]
        assert aws["source"] == "hashicorp/aws", path
        if path.startswith("envs/"):
            assert aws["version"].startswith("~> 6."), path
            backend = only(terraform["backend"])["s3"]
            assert backend["encrypt"] is True
            assert backend["use_lockfile"] is True
        else:
            assert aws["version"] == ">= 6.0, < 7.0", path
