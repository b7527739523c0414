# The whole iotpipe platform for one environment. envs/dev and envs/prod call this module with
# their sizes; everything that is the same in both lives here, once.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  name       = "iotpipe-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.region
  tags       = merge(var.tags, { "iotpipe.io/environment" = var.environment })

  # Image repositories: <registry>/iotpipe/<image>, the chart's image names.
  images = ["sensor-simulator", "dlq-inspector", "quality-gate", "warehouse-loader", "orchestrator", "spark"]

  # Lake prefixes (iotpipe.lake.Lake under lake.root = s3a://<bucket>/lake).
  lake    = module.lake.prefix
  bronze  = "${local.lake}bronze/"
  gold    = "${local.lake}gold/"
  quality = "${local.lake}_quality/"
  models  = "${local.lake}_models/"
}

# ---------------------------------------------------------------------------------------------
# Keys: one per purpose, so that access to one kind of data never implies access to another.
# ---------------------------------------------------------------------------------------------
module "kms_lake" {
  source      = "../kms"
  name        = "${local.name}-lake"
  description = "iotpipe ${var.environment}: S3 lake (SSE-KMS)"
  tags        = local.tags
}

module "kms_eks" {
  source      = "../kms"
  name        = "${local.name}-eks"
  description = "iotpipe ${var.environment}: Kubernetes Secrets envelope encryption"
  tags        = local.tags
}

module "kms_logs" {
  source                = "../kms"
  name                  = "${local.name}-logs"
  description           = "iotpipe ${var.environment}: CloudWatch log groups (EKS control plane, VPC flow logs)"
  allow_cloudwatch_logs = true
  tags                  = local.tags
}

module "kms_redshift" {
  source             = "../kms"
  name               = "${local.name}-redshift"
  description        = "iotpipe ${var.environment}: Redshift Serverless namespace and its admin-password secret"
  service_principals = ["redshift.amazonaws.com", "redshift-serverless.amazonaws.com"]
  tags               = local.tags
}

module "kms_ecr" {
  source      = "../kms"
  name        = "${local.name}-ecr"
  description = "iotpipe ${var.environment}: container images"
  tags        = local.tags
}

# ---------------------------------------------------------------------------------------------
# Network, cluster, lake, warehouse, images
# ---------------------------------------------------------------------------------------------
module "vpc" {
  source             = "../vpc"
  name               = local.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  logs_kms_key_arn   = module.kms_logs.key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "eks" {
  source               = "../eks"
  name                 = local.name
  kubernetes_version   = var.kubernetes_version
  private_subnet_ids   = module.vpc.private_subnet_ids
  public_access_cidrs  = var.eks_public_access_cidrs
  admin_principal_arns = var.eks_admin_principal_arns
  kms_key_arn          = module.kms_eks.key_arn
  logs_kms_key_arn     = module.kms_logs.key_arn
  log_retention_days   = var.log_retention_days

  system_instance_types = var.system_instance_types
  system_min_size       = var.system_min_size
  system_desired_size   = var.system_desired_size
  system_max_size       = var.system_max_size
  spark_instance_types  = var.spark_instance_types
  spark_min_size        = var.spark_min_size
  spark_desired_size    = var.spark_desired_size
  spark_max_size        = var.spark_max_size

  tags = local.tags
}

module "lake" {
  source                    = "../lake"
  bucket_name               = "${local.name}-lake-${local.account_id}"
  kms_key_arn               = module.kms_lake.key_arn
  bronze_glacier_after_days = var.bronze_glacier_after_days
  tags                      = local.tags
}

module "redshift" {
  source                    = "../redshift"
  name                      = local.name
  kms_key_arn               = module.kms_redshift.key_arn
  vpc_id                    = module.vpc.vpc_id
  subnet_ids                = module.vpc.private_subnet_ids
  client_security_group_ids = [module.eks.cluster_security_group_id]
  s3_prefix_list_id         = module.vpc.s3_prefix_list_id
  base_capacity_rpu         = var.redshift_base_capacity_rpu
  max_capacity_rpu          = var.redshift_max_capacity_rpu
  daily_rpu_hours_limit     = var.redshift_daily_rpu_hours_limit
  usage_limit_breach_action = var.redshift_usage_limit_breach_action
  lake_bucket_arn           = module.lake.bucket_arn
  lake_kms_key_arn          = module.kms_lake.key_arn
  copy_prefixes             = [local.gold]
  tags                      = local.tags
}

module "ecr" {
  count        = var.create_ecr ? 1 : 0
  source       = "../ecr"
  repositories = [for image in local.images : "iotpipe/${image}"]
  kms_key_arn  = module.kms_ecr.key_arn
  tags         = local.tags
}

# ---------------------------------------------------------------------------------------------
# IAM roles for the service accounts that touch AWS (the others get none)
# ---------------------------------------------------------------------------------------------
# Spark drivers and executors: read the lake; write what the jobs write (iotpipe.lake.Lake):
# the three layers, the DLQ copy, the stream's per-minute summary (streaming/) and the
# streaming checkpoints. Never _quality/ (the gate's verdicts) nor _models/ (the trainer's).
module "spark_policy" {
  source        = "../lake-policy"
  bucket_arn    = module.lake.bucket_arn
  kms_key_arn   = module.kms_lake.key_arn
  read_prefixes = [local.lake]
  write_prefixes = [
    "${local.lake}bronze/",
    "${local.lake}silver/",
    "${local.lake}gold/",
    "${local.lake}dlq/",
    "${local.lake}streaming/",
    "${local.lake}_checkpoints/",
  ]
}

# The detector's training (train_detector's driver): read the lake, write only the models
# under _models/, which bronze_to_silver loads. Its executors only read (Spark's role).
module "spark_trainer_policy" {
  source         = "../lake-policy"
  bucket_arn     = module.lake.bucket_arn
  kms_key_arn    = module.kms_lake.key_arn
  read_prefixes  = [local.lake]
  write_prefixes = [local.models]
}

# Quality gate: read the lake, write only its verdicts under _quality/.
module "quality_gate_policy" {
  source         = "../lake-policy"
  bucket_arn     = module.lake.bucket_arn
  kms_key_arn    = module.kms_lake.key_arn
  read_prefixes  = [local.lake]
  write_prefixes = [local.quality]
}

# Warehouse loader: read Gold; run SQL on the workgroup with temporary IAM credentials
# (GetCredentials) or the Data API. It never sees the admin password.
data "aws_iam_policy_document" "warehouse" {
  statement {
    sid       = "WorkgroupSql"
    actions   = ["redshift-serverless:GetCredentials", "redshift-data:ExecuteStatement", "redshift-data:BatchExecuteStatement"]
    resources = [module.redshift.workgroup_arn]
  }

  statement {
    sid       = "OwnStatements"
    actions   = ["redshift-data:DescribeStatement", "redshift-data:GetStatementResult", "redshift-data:CancelStatement", "redshift-data:ListStatements"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "redshift-data:statement-owner-iam-userid"
      values   = ["$${aws:userid}"]
    }
  }
}

module "warehouse_loader_policy" {
  source                 = "../lake-policy"
  bucket_arn             = module.lake.bucket_arn
  kms_key_arn            = module.kms_lake.key_arn
  read_prefixes          = [local.gold]
  extra_policy_documents = [data.aws_iam_policy_document.warehouse.json]
}

# Orchestrator: its freshness CronJob lists Bronze's partitions and reads the stream's file sink
# log (bronze/sensor_readings/_spark_metadata) to tell committed files from orphans. Read-only,
# Bronze only (list with a prefix condition, get, decrypt); its daily run needs no AWS at all.
module "orchestrator_policy" {
  source        = "../lake-policy"
  bucket_arn    = module.lake.bucket_arn
  kms_key_arn   = module.kms_lake.key_arn
  read_prefixes = [local.bronze]
}

# One role per workload, named <name>-<role>. `service_accounts` maps the chart's
# serviceAccounts.<key> to the account its trust admits: the Spark executors are one workload
# with their drivers (they read and write the same prefixes), so that role trusts both.
locals {
  workloads = {
    spark = {
      role             = "spark"
      service_accounts = { spark = "iotpipe-spark", sparkExecutor = "iotpipe-spark-executor" }
      policy_json      = module.spark_policy.json
    }
    sparkTrainer = {
      role             = "spark-trainer"
      service_accounts = { sparkTrainer = "iotpipe-spark-trainer" }
      policy_json      = module.spark_trainer_policy.json
    }
    warehouseLoader = {
      role             = "warehouse-loader"
      service_accounts = { warehouseLoader = "iotpipe-warehouse-loader" }
      policy_json      = module.warehouse_loader_policy.json
    }
    qualityGate = {
      role             = "quality-gate"
      service_accounts = { qualityGate = "iotpipe-quality-gate" }
      policy_json      = module.quality_gate_policy.json
    }
    orchestrator = {
      role             = "orchestrator"
      service_accounts = { orchestrator = "iotpipe-orchestrator" }
      policy_json      = module.orchestrator_policy.json
    }
  }

  # serviceAccounts.<key> of the chart -> its account and the workload whose role it assumes.
  service_accounts = merge([
    for workload, w in local.workloads : {
      for key, account in w.service_accounts : key => { name = account, workload = workload }
    }
  ]...)
}

module "irsa" {
  for_each          = local.workloads
  source            = "../irsa"
  role_name         = "${local.name}-${each.value.role}"
  namespace         = var.namespace
  service_accounts  = values(each.value.service_accounts)
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_issuer_host  = module.eks.oidc_issuer_host
  inline_policies   = { least-privilege = each.value.policy_json }
  tags              = local.tags
}
