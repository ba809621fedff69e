output "instance_id" {
  description = "EC2 instance id (Session Manager target)."
  value       = aws_instance.this.id
}

output "address" {
  description = "Private address."
  value       = aws_instance.this.private_ip
}

output "role_name" {
  description = "IAM role of the instance."
  value       = aws_iam_role.this.name
}
