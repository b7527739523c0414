variable "bucket_name" {
  description = "Name of the lake bucket (globally unique); the access-log bucket is <name>-access-logs."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for SSE-KMS."
  type        = string
}

variable "bronze_glacier_after_days" {
  description = "Age (days) at which Bronze objects move to Glacier."
  type        = number
  default     = 90
}

variable "bronze_glacier_storage_class" {
  description = "Glacier class for old Bronze: GLACIER_IR (readable by Spark as is), GLACIER or DEEP_ARCHIVE (need a restore first)."
  type        = string
  default     = "GLACIER_IR"

  validation {
    condition     = contains(["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], var.bronze_glacier_storage_class)
    error_message = "Use one of GLACIER_IR, GLACIER, DEEP_ARCHIVE."
  }
}

variable "checkpoint_garbage_expiration_days" {
  description = "Days after which deleted/overwritten checkpoint files (noncurrent versions) are removed."
  type        = number
  default     = 3
}

variable "noncurrent_version_expiration_days" {
  description = "Recovery window (days) for overwritten or deleted lake objects."
  type        = number
  default     = 30
}

variable "access_log_retention_days" {
  description = "Retention of S3 server access logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
