variable "bucket_arn" {
  description = "ARN of the lake bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the lake."
  type        = string
}

variable "read_prefixes" {
  description = "Key prefixes the workload lists and reads (each ending in /)."
  type        = list(string)

  validation {
    condition     = alltrue([for p in var.read_prefixes : endswith(p, "/")])
    error_message = "Prefixes end in / so that lake/gold/ does not also match lake/gold-old/."
  }
}

variable "write_prefixes" {
  description = "Key prefixes the workload also writes and deletes under (each ending in /)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.write_prefixes : endswith(p, "/")])
    error_message = "Prefixes end in / so that lake/gold/ does not also match lake/gold-old/."
  }
}

variable "extra_policy_documents" {
  description = "Further policy documents (JSON) merged into this one."
  type        = list(string)
  default     = []
}
