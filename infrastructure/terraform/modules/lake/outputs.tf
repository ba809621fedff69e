output "bucket_name" {
  description = "S3_BUCKET."
  value       = aws_s3_bucket.lake.id
}

output "bucket_arn" {
  description = "ARN of the lake bucket."
  value       = aws_s3_bucket.lake.arn
}

output "lake_root" {
  description = "LAKE_ROOT."
  value       = "s3a://${aws_s3_bucket.lake.id}/"
}

output "kms_key_arn" {
  description = "The customer managed key of the lake, or null with SSE-S3."
  value       = var.customer_managed_key ? aws_kms_key.lake[0].arn : null
}
