# What Terraform knows that each host's .env needs (addresses, lake, topics, images, ports), and how the
# guide's one Kafka host becomes three, one per zone, running the unchanged compose file.

locals {
  # The compose file of each role (tests/deployment/artifacts.py: COMPOSE_FILES).
  compose_files = {
    webserver = "ingestion/docker-compose.yaml"
    kafka     = "messaging/kafka-compose.yaml"
    spark     = "processing/spark-compose.yaml"
    gold      = "gold/docker-compose.yaml"
    airflow   = "orchestration/docker-compose.yaml"
  }

  # Kafka host n (in name order) runs controller n and broker n of messaging/kafka-compose.yaml, whose
  # EXTERNAL listener is port 9091 + n.
  kafka_hosts = sort([for name, h in var.hosts : name if h.role == "kafka"])
  kafka_node  = { for i, name in local.kafka_hosts : name => i + 1 }
  gold        = one([for name, h in var.hosts : h.address if h.role == "gold"])

  common = {
    PLATFORM_MODE         = "docker"
    PIPELINE_RUNNER       = "docker"
    IMAGE_REGISTRY        = var.image_registry
    IMAGE_TAG             = var.image_tag
    KAFKA_HOST            = var.hosts[local.kafka_hosts[0]].address
    KAFKA_BROKERS         = join(",", [for name in local.kafka_hosts : "${var.hosts[name].address}:${9091 + local.kafka_node[name]}"])
    KAFKA_TOPIC           = var.kafka_topic
    KAFKA_DLQ_TOPIC       = var.kafka_dlq_topic
    KAFKA_MANIFEST_TOPIC  = var.kafka_manifest_topic
    POSTGRES_HOST         = local.gold
    POSTGRES_PORT         = tostring(var.postgres_port)
    LAKE_ROOT             = var.lake_root
    S3_BUCKET             = var.s3_bucket
    S3_ENDPOINT           = var.s3_endpoint
    DOCKER_TLS            = "1"
    DOCKER_URL_WEBSERVER0 = "tcp://${var.hosts["webserver0"].address}:2376"
    DOCKER_URL_WEBSERVER1 = "tcp://${var.hosts["webserver1"].address}:2376"
    DOCKER_URL_SPARK      = "tcp://${var.hosts["spark"].address}:2376"
    SUPERSET_PORT         = tostring(var.superset_port)
    AIRFLOW_PORT          = tostring(var.airflow_port)
    SPARK_MASTER_UI_PORT  = tostring(var.spark_master_ui_port)
  }

  # A Kafka host advertises its own broker's EXTERNAL listener at its own address.
  env = {
    for name, h in var.hosts : name => merge(local.common, { PUBLISH_ADDRESS = h.address },
    h.role == "kafka" ? { KAFKA_HOST = h.address } : {})
  }

  # Peers of Kafka host n: the names the compose file gives their nodes, resolved to their hosts
  # (containers cannot see another host's Docker DNS). Their INTERNAL (29092) and CONTROLLER (29093)
  # ports are published for these names only to the kafka security group.
  kafka_peers = {
    for name in local.kafka_hosts : name => flatten([
      for peer in local.kafka_hosts : [
        "kafka-controller-${local.kafka_node[peer]}:${var.hosts[peer].address}",
        "kafka-${local.kafka_node[peer]}:${var.hosts[peer].address}",
      ] if peer != name
    ])
  }

  kafka_services = {
    for name in local.kafka_hosts : name => concat(
      ["kafka-controller-${local.kafka_node[name]}", "kafka-${local.kafka_node[name]}"],
      local.kafka_node[name] == 1 ? ["kafka-ui"] : []
    )
  }

  kafka_override = {
    for name in local.kafka_hosts : name => yamlencode({
      services = merge(
        {
          "kafka-controller-${local.kafka_node[name]}" = {
            ports       = ["29093:29093"]
            extra_hosts = local.kafka_peers[name]
          }
          "kafka-${local.kafka_node[name]}" = {
            ports       = ["29092:29092"]
            extra_hosts = local.kafka_peers[name]
            environment = { KAFKA_BROKER_RACK = var.hosts[name].zone }
          }
        },
        local.kafka_node[name] == 1 ? {
          "kafka-init" = { extra_hosts = local.kafka_peers[name] }
          "kafka-ui"   = { extra_hosts = local.kafka_peers[name] }
        } : {}
      )
    })
  }
}
