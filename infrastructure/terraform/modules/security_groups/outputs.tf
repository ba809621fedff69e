output "ids" {
  description = "Security group id per host role (webserver, kafka, spark, gold, airflow)."
  value       = { for role, group in aws_security_group.role : role => group.id }
}
