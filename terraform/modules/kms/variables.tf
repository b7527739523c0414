variable "name" {
  description = "Alias of the key (without the alias/ prefix)."
  type        = string
}

variable "description" {
  description = "What the key protects."
  type        = string
}

variable "service_principals" {
  description = "AWS service principals (e.g. s3.amazonaws.com) allowed to use the key on behalf of this account."
  type        = list(string)
  default     = []
}

variable "allow_cloudwatch_logs" {
  description = "Allow CloudWatch Logs in this region to encrypt log groups of this account with the key."
  type        = bool
  default     = false
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period (90-2560 days)."
  type        = number
  default     = 365
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled deletion takes effect (7-30 days)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
