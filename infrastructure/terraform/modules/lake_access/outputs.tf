output "user_name" {
  description = "IAM user whose access key goes into AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."
  value       = aws_iam_user.spark_jobs.name
}

output "policy_json" {
  description = "The lake policy as granted."
  value       = data.aws_iam_policy_document.lake.json
}
