output "hosts" {
  description = "Every host: role, zone, private address, instance id (the target of Session Manager)."
  value = {
    for name, h in local.hosts : name => {
      role        = h.role
      zone        = h.zone
      address     = h.address
      instance_id = module.host[name].instance_id
    }
  }
}

output "env_files" {
  description = "Per host, the .env lines Terraform decides; each host merges them over the template and its secrets at boot."
  value       = { for name, values in module.host_env.env : name => join("", [for k in sort(keys(values)) : "${k}=${values[k]}\n"]) }
}

output "docker_certs_command" {
  description = "Makes the Docker API certificates for these addresses (run before put_secrets.py)."
  value       = "make docker-certs OUT=./docker-certs HOSTS=\"${module.host_env.docker_certs_hosts}\""
}

output "secrets_layout" {
  description = "Input of infrastructure/terraform/put_secrets.py: where each host reads its secrets."
  value = {
    region           = var.region
    parameter_prefix = var.parameter_prefix
    hosts = {
      for name, h in local.hosts : name => {
        role                = h.role
        compose_file        = module.host_env.compose_files[h.role]
        docker_api          = contains(local.docker_api_hosts, name)
        docker_client_hosts = h.role == "airflow" ? local.docker_api_hosts : []
      }
    }
  }
}

output "lake" {
  description = "The lake: bucket, LAKE_ROOT, KMS key, and the IAM user whose access key the Spark jobs use."
  value = {
    bucket          = module.lake.bucket_name
    lake_root       = module.lake.lake_root
    kms_key_arn     = module.lake.kms_key_arn
    spark_jobs_user = module.lake_access.user_name
  }
}

output "urls" {
  description = "The UIs, at private addresses (through the VPN, or Session Manager port forwarding)."
  value = {
    airflow      = "http://${local.hosts["airflow"].address}:${var.airflow_port}"
    superset     = "http://${local.hosts["gold"].address}:${var.superset_port}"
    kafka_ui     = "http://${local.hosts["kafka1"].address}:8080"
    spark_master = "http://${local.hosts["spark"].address}:${var.spark_master_ui_port}"
  }
}
