variable "name" {
  description = "Name of the cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane."
  type        = string
  default     = "1.34"
}

variable "private_subnet_ids" {
  description = "Private subnets of the control plane's network interfaces and of the nodes."
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint; empty keeps the endpoint private (reach it from the VPC, a VPN or Session Manager)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "Do not open the Kubernetes API to the whole internet."
  }
}

variable "kms_key_arn" {
  description = "KMS key for envelope encryption of Kubernetes Secrets."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the control-plane logs."
  type        = number
  default     = 365
}

variable "admin_principal_arns" {
  description = "IAM roles/users that get cluster-admin through EKS access entries (besides the creator)."
  type        = list(string)
  default     = []
}

variable "pool_label_key" {
  description = "Node label naming the node group (nodeSelector of the chart's pods)."
  type        = string
  default     = "iotpipe.io/pool"
}

variable "spot_taint_key" {
  description = "Taint key (value \"true\", NoSchedule) of the spot nodes; Spark executors tolerate it."
  type        = string
  default     = "iotpipe.io/spot"
}

variable "system_instance_types" {
  description = "Instance types of the on-demand system node group."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "system_min_size" {
  description = "Minimum size of the system node group."
  type        = number
  default     = 2
}

variable "system_desired_size" {
  description = "Initial size of the system node group."
  type        = number
  default     = 3
}

variable "system_max_size" {
  description = "Maximum size of the system node group."
  type        = number
  default     = 6
}

variable "spark_instance_types" {
  description = "Instance types of the spot executor group (several of the same size, so spot capacity is found)."
  type        = list(string)
  default     = ["r6i.xlarge", "r5.xlarge", "r6a.xlarge", "r7i.xlarge"]
}

variable "spark_min_size" {
  description = "Minimum size of the spot executor group."
  type        = number
  default     = 0
}

variable "spark_desired_size" {
  description = "Initial size of the spot executor group."
  type        = number
  default     = 2
}

variable "spark_max_size" {
  description = "Maximum size of the spot executor group."
  type        = number
  default     = 10
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
