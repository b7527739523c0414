# A least-privilege IAM policy document for one workload's access to the lake: list and read
# under `read_prefixes`, write and delete under `write_prefixes`, and the KMS operations SSE-KMS
# needs (decrypt to read, generate data keys to write). Creates no resources.

locals {
  can_write = length(var.write_prefixes) > 0
  list_prefixes = distinct(concat(
    flatten([for p in var.read_prefixes : [p, "${p}*"]]),
    flatten([for p in var.write_prefixes : [p, "${p}*"]]),
  ))
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.extra_policy_documents

  statement {
    sid       = "LocateBucket"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = local.list_prefixes
    }
  }

  statement {
    sid       = "ReadObjects"
    actions   = ["s3:GetObject"]
    resources = [for p in distinct(concat(var.read_prefixes, var.write_prefixes)) : "${var.bucket_arn}/${p}*"]
  }

  dynamic "statement" {
    for_each = local.can_write ? [1] : []
    content {
      sid       = "WriteObjects"
      actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
      resources = [for p in var.write_prefixes : "${var.bucket_arn}/${p}*"]
    }
  }

  dynamic "statement" {
    for_each = local.can_write ? [1] : []
    content {
      sid       = "ListUploads"
      actions   = ["s3:ListBucketMultipartUploads"]
      resources = [var.bucket_arn]
    }
  }

  statement {
    sid       = "UseLakeKey"
    actions   = local.can_write ? ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"] : ["kms:Decrypt", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }
}
