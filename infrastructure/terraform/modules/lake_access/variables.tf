variable "name" {
  description = "Prefix of the IAM user and group names."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the lake bucket."
  type        = string
}

variable "use_kms_key" {
  description = "Whether the lake has a customer managed key (known at plan time, unlike the key's ARN)."
  type        = bool
}

variable "kms_key_arn" {
  description = "The lake's customer managed key when use_kms_key; no KMS permission is granted otherwise."
  type        = string
  default     = null
}
