variable "environment" {
  description = "Environment name (dev, prod): part of every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "A short lowercase name (it goes into bucket and role names)."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the release (the IRSA trust is scoped to it)."
  type        = string
  default     = "iotpipe"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Three availability zones of the region (Redshift Serverless needs three)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "Name exactly three zones: Redshift Serverless needs three, EKS at least two."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per zone (cheaper, not zone-redundant)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups (EKS control plane, VPC flow logs)."
  type        = number
  default     = 365
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of EKS."
  type        = string
  default     = "1.34"
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint; empty keeps it private."
  type        = list(string)
  default     = []
}

variable "eks_admin_principal_arns" {
  description = "IAM roles/users with cluster-admin (EKS access entries)."
  type        = list(string)
  default     = []
}

variable "system_instance_types" {
  description = "Instance types of the on-demand system node group."
  type        = list(string)
}

variable "system_min_size" {
  description = "Minimum size of the system node group."
  type        = number
}

variable "system_desired_size" {
  description = "Initial size of the system node group."
  type        = number
}

variable "system_max_size" {
  description = "Maximum size of the system node group."
  type        = number
}

variable "spark_instance_types" {
  description = "Instance types of the spot Spark-executor node group."
  type        = list(string)
}

variable "spark_min_size" {
  description = "Minimum size of the spot node group."
  type        = number
}

variable "spark_desired_size" {
  description = "Initial size of the spot node group."
  type        = number
}

variable "spark_max_size" {
  description = "Maximum size of the spot node group."
  type        = number
}

variable "bronze_glacier_after_days" {
  description = "Age (days) at which Bronze moves to Glacier Instant Retrieval."
  type        = number
  default     = 90
}

variable "redshift_base_capacity_rpu" {
  description = "Base RPU of the Redshift Serverless workgroup."
  type        = number
  default     = 8
}

variable "redshift_max_capacity_rpu" {
  description = "Maximum RPU of the workgroup."
  type        = number
  default     = 32
}

variable "redshift_daily_rpu_hours_limit" {
  description = "Daily compute usage limit of the workgroup (RPU-hours)."
  type        = number
}

variable "redshift_usage_limit_breach_action" {
  description = "log, emit-metric or deactivate when the daily limit is reached."
  type        = string
  default     = "log"
}

variable "create_ecr" {
  description = "Create the ECR repositories (false when another environment in the same account owns them)."
  type        = bool
  default     = true
}

variable "warehouse_credentials_secret" {
  description = "Name of the Kubernetes Secret with the warehouse credentials (the chart's warehouse.credentialsSecret)."
  type        = string
  default     = "iotpipe-warehouse"
}
