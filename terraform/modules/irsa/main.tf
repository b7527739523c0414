# An IAM role that exactly the given Kubernetes service accounts can assume through the
# cluster's OIDC provider (IAM roles for service accounts). The trust policy pins both the
# audience and the subjects with StringEquals: no wildcards, no other namespace, no other
# service account. Most roles admit one account; several share a role only when they are one
# workload (the Spark drivers and their executors).

locals {
  subjects = [for account in var.service_accounts : "system:serviceaccount:${var.namespace}:${account}"]
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "ServiceAccount"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer_host}:sub"
      values   = local.subjects
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.role_name
  description          = "IRSA role of ${join(", ", local.subjects)}"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  # Tag values allow no commas: the subjects are separated by spaces.
  tags = merge(var.tags, { "iotpipe.io/service-account" = join(" ", local.subjects) })
}

# Keyed by name (known at plan time) so that policies computed during the apply still work.
resource "aws_iam_role_policy" "this" {
  for_each = var.inline_policies
  name     = each.key
  role     = aws_iam_role.this.id
  policy   = each.value
}

resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = toset(var.managed_policy_arns)
  role       = aws_iam_role.this.name
  policy_arn = each.value
}
