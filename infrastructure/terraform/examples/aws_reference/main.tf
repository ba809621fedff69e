# The reference AWS deployment of docker mode (infrastructure/README.md, "Deploy on AWS with
# Terraform"): the guide's hosts at fixed private addresses in a private network, the lake bucket and
# its one IAM identity. Each host installs itself on first boot (modules/host/files/bootstrap.sh).

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:only the first three names are used, and a zone AWS adds later sorts after them
  state = "available"
}

# Debian 12, as the guide's hosts: its docker.io and docker-compose run the compose files unchanged.
data "aws_ami" "debian12" {
  most_recent = true
  owners      = ["136693071363"] # Debian's own AWS account
  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  zones = length(var.availability_zones) > 0 ? var.availability_zones : slice(data.aws_availability_zones.available.names, 0, 3)

  # The hosts of the guide; zone is an index into local.zones (wrapped when there are fewer), number
  # the host part of its fixed address in that zone's subnet. The guide's Kafka host is three hosts,
  # one per zone, each with one controller and one broker (broker.rack = its zone).
  layout = {
    webserver0 = { role = "webserver", zone = 0, number = 10 }
    webserver1 = { role = "webserver", zone = 1, number = 11 }
    kafka1     = { role = "kafka", zone = 0, number = 20 }
    kafka2     = { role = "kafka", zone = 1, number = 21 }
    kafka3     = { role = "kafka", zone = 2, number = 22 }
    spark      = { role = "spark", zone = 0, number = 30 }
    gold       = { role = "gold", zone = 0, number = 40 }
    airflow    = { role = "airflow", zone = 0, number = 50 }
  }

  hosts = {
    for name, h in local.layout : name => {
      role    = h.role
      zone    = local.zones[h.zone % length(local.zones)]
      subnet  = module.network.private_subnet_ids[h.zone % length(local.zones)]
      address = cidrhost(module.network.private_subnet_cidrs[h.zone % length(local.zones)], h.number)
    }
  }

  docker_api_hosts = ["webserver0", "webserver1", "spark"]
  source_ref       = var.source_ref != "" ? var.source_ref : "v${var.image_tag}"
  # kafka-init reaches the brokers on their INTERNAL listener, the port the Kafka hosts share.
  kafka_internal = [for name, h in local.hosts : "${h.address}:29092" if h.role == "kafka"]
}

module "network" {
  source             = "../../modules/network"
  name               = var.name
  cidr               = var.vpc_cidr
  availability_zones = local.zones
}

module "security_groups" {
  source               = "../../modules/security_groups"
  name                 = var.name
  vpc_id               = module.network.vpc_id
  vpc_cidr             = module.network.vpc_cidr
  admin_cidrs          = var.admin_cidrs
  analyst_cidrs        = length(var.analyst_cidrs) > 0 ? var.analyst_cidrs : var.admin_cidrs
  postgres_port        = var.postgres_port
  superset_port        = var.superset_port
  airflow_port         = var.airflow_port
  spark_master_ui_port = var.spark_master_ui_port
}

module "lake" {
  source                = "../../modules/lake"
  bucket_name           = var.lake_bucket
  customer_managed_key  = var.lake_customer_managed_key
  bronze_retention_days = var.bronze_retention_days
  force_destroy         = var.lake_force_destroy
}

module "lake_access" {
  source      = "../../modules/lake_access"
  name        = var.name
  bucket_arn  = module.lake.bucket_arn
  use_kms_key = var.lake_customer_managed_key
  kms_key_arn = module.lake.kms_key_arn
}

module "host_env" {
  source               = "../../modules/host_env"
  hosts                = { for name, h in local.hosts : name => { role = h.role, address = h.address, zone = h.zone } }
  lake_root            = module.lake.lake_root
  s3_bucket            = module.lake.bucket_name
  s3_endpoint          = "https://s3.${var.region}.amazonaws.com"
  kafka_topic          = var.kafka_topic
  kafka_dlq_topic      = var.kafka_dlq_topic
  kafka_manifest_topic = var.kafka_manifest_topic
  image_registry       = var.image_registry
  image_tag            = var.image_tag
  postgres_port        = var.postgres_port
  superset_port        = var.superset_port
  airflow_port         = var.airflow_port
  spark_master_ui_port = var.spark_master_ui_port
}

module "host" {
  source   = "../../modules/host"
  for_each = local.hosts

  name              = var.name
  host              = each.key
  role              = each.value.role
  subnet_id         = each.value.subnet
  address           = each.value.address
  security_group_id = module.security_groups.ids[each.value.role]
  ami_id            = data.aws_ami.debian12.id
  instance_type     = var.instance_types[each.value.role]
  volume_size_gb    = var.volume_sizes_gb[each.value.role]
  parameter_prefix  = var.parameter_prefix
  source_repository = var.source_repository
  source_ref        = local.source_ref
  session_manager   = var.session_manager
  env               = module.host_env.env[each.key]

  compose_file        = module.host_env.compose_files[each.value.role]
  compose_override    = lookup(module.host_env.kafka_compose_override, each.key, "")
  compose_services    = lookup(module.host_env.kafka_services, each.key, [])
  docker_api          = contains(local.docker_api_hosts, each.key)
  docker_client_hosts = each.value.role == "airflow" ? local.docker_api_hosts : []
  # Airflow's init migrates its metadata database on the Gold host; kafka-init needs every broker.
  wait_for           = each.value.role == "airflow" ? ["${local.hosts["gold"].address}:${var.postgres_port}"] : []
  run_once           = each.key == "kafka1" ? ["kafka-init"] : []
  run_once_waits_for = each.key == "kafka1" ? local.kafka_internal : []
}
