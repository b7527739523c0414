variable "name" {
  description = "Name of the namespace and workgroup."
  type        = string
}

variable "database" {
  description = "Name of the warehouse database."
  type        = string
  default     = "iotpipe"
}

variable "admin_username" {
  description = "Admin user name; its password is generated and kept by Secrets Manager."
  type        = string
  default     = "iotpipe_admin"
}

variable "kms_key_arn" {
  description = "KMS key for the namespace's data and the admin-password secret."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the workgroup."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the workgroup (Redshift Serverless needs three zones)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 3
    error_message = "Redshift Serverless needs subnets in at least three availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect (the EKS cluster security group)."
  type        = list(string)
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the VPC's S3 gateway endpoint."
  type        = string
}

variable "port" {
  description = "SQL port."
  type        = number
  default     = 5439
}

variable "base_capacity_rpu" {
  description = "Base compute in Redshift Processing Units (8 is the minimum, steps of 8)."
  type        = number
  default     = 8
}

variable "max_capacity_rpu" {
  description = "Upper bound of automatic scaling (RPU)."
  type        = number
  default     = 32
}

variable "daily_rpu_hours_limit" {
  description = "Compute usage limit per day, in RPU-hours."
  type        = number
  default     = 48
}

variable "usage_limit_breach_action" {
  description = "What happens past the usage limit: log, emit-metric or deactivate."
  type        = string
  default     = "log"

  validation {
    condition     = contains(["log", "emit-metric", "deactivate"], var.usage_limit_breach_action)
    error_message = "Use log, emit-metric or deactivate."
  }
}

variable "lake_bucket_arn" {
  description = "ARN of the lake bucket COPY reads from."
  type        = string
}

variable "lake_kms_key_arn" {
  description = "KMS key of the lake (COPY decrypts with it)."
  type        = string
}

variable "copy_prefixes" {
  description = "Key prefixes COPY may read (the Gold layer)."
  type        = list(string)
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
