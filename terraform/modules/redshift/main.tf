# Redshift Serverless: a namespace (storage, encrypted with our key, admin password generated and
# kept by Secrets Manager) and a workgroup (compute) in the private subnets, not publicly
# accessible, with enhanced VPC routing so COPY traffic from the lake stays inside the VPC (via
# the S3 gateway endpoint). A dedicated role, the namespace's default IAM role, lets COPY read
# the Gold layer and nothing else.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
}

# ---------------------------------------------------------------------------------------------
# The role Redshift assumes for COPY ... IAM_ROLE default
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "copy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "copy" {
  statement {
    sid       = "ListGold"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for p in var.copy_prefixes : "${p}*"]
    }
  }

  statement {
    sid       = "LocateBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.lake_bucket_arn]
  }

  statement {
    sid       = "ReadGold"
    actions   = ["s3:GetObject"]
    resources = [for p in var.copy_prefixes : "${var.lake_bucket_arn}/${p}*"]
  }

  statement {
    sid       = "DecryptLake"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [var.lake_kms_key_arn]
  }
}

resource "aws_iam_role" "copy" {
  name               = "${var.name}-redshift-copy"
  description        = "Assumed by Redshift Serverless for COPY from the lake's Gold layer"
  assume_role_policy = data.aws_iam_policy_document.copy_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "copy" {
  name   = "copy-from-gold"
  role   = aws_iam_role.copy.id
  policy = data.aws_iam_policy_document.copy.json
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------
resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redshift-"
  description = "Redshift Serverless workgroup ${var.name}: SQL from the EKS cluster only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-redshift" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "sql" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.this.id
  description                  = "SQL (TLS) from the EKS cluster's pods and nodes"
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "s3" {
  security_group_id = aws_security_group.this.id
  description       = "COPY/UNLOAD to S3 through the gateway endpoint (enhanced VPC routing)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.s3_prefix_list_id
}

# ---------------------------------------------------------------------------------------------
# Namespace (storage) and workgroup (compute)
# ---------------------------------------------------------------------------------------------
resource "aws_redshiftserverless_namespace" "this" {
  namespace_name                   = var.name
  db_name                          = var.database
  admin_username                   = var.admin_username
  manage_admin_password            = true
  admin_password_secret_kms_key_id = var.kms_key_arn
  kms_key_id                       = var.kms_key_arn
  iam_roles                        = [aws_iam_role.copy.arn]
  default_iam_role_arn             = aws_iam_role.copy.arn
  log_exports                      = ["userlog", "connectionlog", "useractivitylog"]
  tags                             = var.tags
}

resource "aws_redshiftserverless_workgroup" "this" {
  workgroup_name       = var.name
  namespace_name       = aws_redshiftserverless_namespace.this.namespace_name
  base_capacity        = var.base_capacity_rpu
  max_capacity         = var.max_capacity_rpu
  port                 = var.port
  publicly_accessible  = false
  enhanced_vpc_routing = true
  subnet_ids           = var.subnet_ids
  security_group_ids   = [aws_security_group.this.id]

  config_parameter {
    parameter_key   = "require_ssl"
    parameter_value = "true"
  }

  config_parameter {
    parameter_key   = "enable_user_activity_logging"
    parameter_value = "true"
  }

  tags = var.tags
}

# A hard ceiling on compute spend: past the limit the workgroup stops taking queries (or only
# logs, per breach_action) until the period resets.
resource "aws_redshiftserverless_usage_limit" "compute" {
  resource_arn  = aws_redshiftserverless_workgroup.this.arn
  usage_type    = "serverless-compute"
  amount        = var.daily_rpu_hours_limit
  period        = "daily"
  breach_action = var.usage_limit_breach_action
}
