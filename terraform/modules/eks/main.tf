# EKS: a private control plane (API endpoint reachable from inside the VPC unless CIDRs are
# opened explicitly), Kubernetes Secrets encrypted with our KMS key, every control-plane log
# type in an encrypted log group, the IAM OIDC provider for IAM roles for service accounts,
# core add-ons and two managed node groups:
#   system      on-demand; everything that must not be interrupted (services, Kafka, Spark drivers)
#   spark-spot  spot, tainted; only Spark executors tolerate it (losing one costs a task retry)

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  node_pools = {
    system = {
      capacity_type  = "ON_DEMAND"
      instance_types = var.system_instance_types
      min_size       = var.system_min_size
      desired_size   = var.system_desired_size
      max_size       = var.system_max_size
      disk_gib       = 50
      taints         = []
    }
    spark-spot = {
      capacity_type  = "SPOT"
      instance_types = var.spark_instance_types
      min_size       = var.spark_min_size
      desired_size   = var.spark_desired_size
      max_size       = var.spark_max_size
      disk_gib       = 100 # shuffle and spill
      taints         = [{ key = var.spot_taint_key, value = "true", effect = "NO_SCHEDULE" }]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Control plane
# ---------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "cluster" {
  # EKS writes to exactly this name; creating it first sets retention and encryption.
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name_prefix        = "${var.name}-cluster-"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# EKS encrypts Secrets with the key through a grant it creates under the cluster role.
data "aws_iam_policy_document" "cluster_kms" {
  statement {
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "cluster_kms" {
  name   = "encrypt-secrets"
  role   = aws_iam_role.cluster.id
  policy = data.aws_iam_policy_document.cluster_kms.json
}

resource "aws_eks_cluster" "this" {
  name     = var.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  vpc_config {
    subnet_ids              = var.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = length(var.public_access_cidrs) > 0
    public_access_cidrs     = length(var.public_access_cidrs) > 0 ? var.public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = var.kms_key_arn
    }
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  tags = var.tags

  depends_on = [
    aws_cloudwatch_log_group.cluster,
    aws_iam_role_policy_attachment.cluster,
    aws_iam_role_policy.cluster_kms,
  ]
}

resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

resource "aws_eks_access_entry" "admins" {
  for_each      = toset(var.admin_principal_arns)
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value
  tags          = var.tags
}

resource "aws_eks_access_policy_association" "admins" {
  for_each      = aws_eks_access_entry.admins
  cluster_name  = aws_eks_cluster.this.name
  principal_arn = each.value.principal_arn
  policy_arn    = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
  access_scope {
    type = "cluster"
  }
}

# ---------------------------------------------------------------------------------------------
# Managed node groups
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "${var.name}-node-"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore", # shell access through Session Manager instead of SSH
  ])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each    = local.node_pools
  name_prefix = "${var.name}-${each.key}-"
  description = "EKS ${each.key} nodes: IMDSv2 only, hop limit 1 (pods use IRSA, not the node role), encrypted gp3"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = each.value.disk_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.name}-${each.key}" })
  }

  tags = var.tags
}

resource "aws_eks_node_group" "this" {
  for_each        = local.node_pools
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types
  ami_type        = "AL2023_x86_64_STANDARD"

  scaling_config {
    min_size     = each.value.min_size
    desired_size = each.value.desired_size
    max_size     = each.value.max_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  labels = {
    (var.pool_label_key) = each.key
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = var.tags

  lifecycle {
    # The cluster autoscaler owns the current size.
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# ---------------------------------------------------------------------------------------------
# Core add-ons (AWS-managed versions: the default for the cluster's Kubernetes version)
# ---------------------------------------------------------------------------------------------
module "ebs_csi_irsa" {
  source              = "../irsa"
  role_name           = "${var.name}-ebs-csi"
  namespace           = "kube-system"
  service_accounts    = ["ebs-csi-controller-sa"]
  oidc_provider_arn   = aws_iam_openid_connect_provider.this.arn
  oidc_issuer_host    = replace(aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
  managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
  tags                = var.tags
}

locals {
  addons = {
    vpc-cni                = null
    kube-proxy             = null
    coredns                = null
    eks-pod-identity-agent = null
    aws-ebs-csi-driver     = module.ebs_csi_irsa.role_arn
  }
}

resource "aws_eks_addon" "this" {
  for_each                    = local.addons
  cluster_name                = aws_eks_cluster.this.name
  addon_name                  = each.key
  service_account_role_arn    = each.value
  resolve_conflicts_on_create = "OVERWRITE"
  resolve_conflicts_on_update = "OVERWRITE"
  tags                        = var.tags

  # coredns and the EBS CSI controller are Deployments: they need nodes to become healthy.
  depends_on = [aws_eks_node_group.this]
}
