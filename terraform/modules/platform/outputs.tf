locals {
  image_registry = var.create_ecr ? module.ecr[0].registry : "${local.account_id}.dkr.ecr.${local.region}.amazonaws.com"
}

output "helm_values" {
  description = "Values of charts/iotpipe that come from this infrastructure, keyed exactly like the chart (terraform/helm_values.py writes them to a values file)."
  value = {
    global = {
      imageRegistry = local.image_registry
    }
    lake = {
      root   = module.lake.root
      region = local.region
    }
    serviceAccounts = {
      for key, account in local.service_accounts : key => {
        name    = account.name
        roleArn = module.irsa[account.workload].role_arn
      }
    }
    warehouse = {
      dialect           = "redshift"
      credentialsSecret = var.warehouse_credentials_secret
      redshift = {
        host        = module.redshift.host
        port        = module.redshift.port
        database    = module.redshift.database
        workgroup   = module.redshift.workgroup
        copyRoleArn = module.redshift.copy_role_arn
      }
    }
  }
}

output "summary" {
  description = "What an operator needs besides the chart values."
  value = {
    region                    = local.region
    cluster_name              = module.eks.cluster_name
    update_kubeconfig         = "aws eks update-kubeconfig --region ${local.region} --name ${module.eks.cluster_name}"
    lake_bucket               = module.lake.bucket
    access_log_bucket         = module.lake.access_log_bucket
    redshift_admin_secret_arn = module.redshift.admin_password_secret_arn
    node_pools                = module.eks.node_pools
    kms_key_arns = {
      lake     = module.kms_lake.key_arn
      eks      = module.kms_eks.key_arn
      logs     = module.kms_logs.key_arn
      redshift = module.kms_redshift.key_arn
      ecr      = module.kms_ecr.key_arn
    }
  }
}
