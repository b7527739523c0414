# dev: the smallest footprint that still runs the whole pipeline. One NAT gateway, a small
# on-demand pool, a spot pool allowed to scale to zero, and a Redshift workgroup at the 8-RPU
# minimum base that stops taking queries past 16 RPU-hours a day.
module "platform" {
  source = "../../modules/platform"

  environment              = "dev"
  vpc_cidr                 = "10.40.0.0/16"
  single_nat_gateway       = true
  availability_zones       = var.availability_zones
  eks_public_access_cidrs  = var.eks_public_access_cidrs
  eks_admin_principal_arns = var.eks_admin_principal_arns

  system_instance_types = ["m6i.large"]
  system_min_size       = 2
  system_desired_size   = 2
  system_max_size       = 3
  spark_instance_types  = ["m6i.xlarge", "m5.xlarge", "m6a.xlarge", "m7i.xlarge"]
  spark_min_size        = 0
  spark_desired_size    = 1
  spark_max_size        = 3

  bronze_glacier_after_days          = 30
  redshift_base_capacity_rpu         = 8
  redshift_max_capacity_rpu          = 16
  redshift_daily_rpu_hours_limit     = 16
  redshift_usage_limit_breach_action = "deactivate"
}
