output "env" {
  description = "Per host: the .env values Terraform decides (secrets come from `make docker-secrets`)."
  value       = local.env
}

output "compose_files" {
  description = "Per role: the compose file its hosts run."
  value       = local.compose_files
}

output "kafka_services" {
  description = "Per Kafka host: the services of messaging/kafka-compose.yaml it starts."
  value       = local.kafka_services
}

output "kafka_compose_override" {
  description = "Per Kafka host: the compose override that spreads the cluster over the zone hosts."
  value       = local.kafka_override
}

output "docker_certs_hosts" {
  description = "HOSTS= of `make docker-certs`: the Docker API hosts and the addresses in DOCKER_URL_*."
  value       = join(" ", [for name in ["webserver0", "webserver1", "spark"] : "${name}=${var.hosts[name].address}"])
}
