# prod: zone-redundant (a NAT gateway per zone, nodes in three zones), on-demand capacity for
# everything that must not be interrupted, spot capacity for Spark executors, and Redshift that
# may scale to 64 RPU under load (the daily limit only alerts, it never stops the warehouse).
module "platform" {
  source = "../../modules/platform"

  environment              = "prod"
  vpc_cidr                 = "10.50.0.0/16"
  single_nat_gateway       = false
  availability_zones       = var.availability_zones
  eks_public_access_cidrs  = var.eks_public_access_cidrs
  eks_admin_principal_arns = var.eks_admin_principal_arns

  system_instance_types = ["m6i.xlarge"]
  system_min_size       = 3
  system_desired_size   = 3
  system_max_size       = 6
  spark_instance_types  = ["r6i.xlarge", "r5.xlarge", "r6a.xlarge", "r7i.xlarge"]
  spark_min_size        = 0
  spark_desired_size    = 3
  spark_max_size        = 12

  bronze_glacier_after_days          = 90
  redshift_base_capacity_rpu         = 8
  redshift_max_capacity_rpu          = 64
  redshift_daily_rpu_hours_limit     = 96
  redshift_usage_limit_breach_action = "emit-metric"
}
