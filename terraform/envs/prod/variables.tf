variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "eks_public_access_cidrs" {
  description = "CIDRs (e.g. an office or VPN egress /32) allowed to reach the Kubernetes API from outside the VPC; empty keeps the endpoint private."
  type        = list(string)
  default     = []
}

variable "eks_admin_principal_arns" {
  description = "IAM roles/users (e.g. an SSO administrator role, the CI deploy role) with cluster-admin."
  type        = list(string)
  default     = []
}
