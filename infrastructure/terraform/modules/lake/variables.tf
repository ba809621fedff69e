variable "bucket_name" {
  description = "Name of the lake bucket (S3_BUCKET; LAKE_ROOT is s3a://<bucket_name>/). Bucket names are global: pick your own."
  type        = string
}

variable "customer_managed_key" {
  description = "Encrypt the lake with a customer managed KMS key (rotated yearly) instead of S3's own key (SSE-S3)."
  type        = bool
  default     = true
}

variable "bronze_retention_days" {
  description = "Days a Bronze object is kept (0 = forever). Bronze is what an exact Silver rebuild reads after Kafka's 7 days."
  type        = number
  default     = 365
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept: the window to undo a bad rerun."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket. Leave false except for a throwaway deployment."
  type        = bool
  default     = false
}
