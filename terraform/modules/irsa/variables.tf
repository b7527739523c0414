variable "role_name" {
  description = "Name of the IAM role."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the service account."
  type        = string
}

variable "service_accounts" {
  description = "Names of the Kubernetes service accounts (in var.namespace) allowed to assume the role."
  type        = list(string)

  validation {
    condition     = length(var.service_accounts) > 0 && alltrue([for account in var.service_accounts : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", account))])
    error_message = "Name at least one service account; each name is a DNS label: no wildcards."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_issuer_host" {
  description = "OIDC issuer URL of the cluster without https:// (the condition-key prefix)."
  type        = string
}

variable "inline_policies" {
  description = "Inline policies of the role: name -> policy JSON."
  type        = map(string)
  default     = {}
}

variable "managed_policy_arns" {
  description = "AWS-managed policies to attach (only for AWS components such as the EBS CSI driver)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
