variable "name" {
  description = "Prefix of the IAM user and group names."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the lake bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "The lake's customer managed key, or null with SSE-S3 (no KMS permission is granted then)."
  type        = string
  default     = null
}
