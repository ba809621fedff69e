# One group per host role; every rule is a row of the port table in infrastructure/README.md
# ("Network and security groups"), and tests/infrastructure compares these rows with the compose files.
# Sources are other groups, never addresses, except the UIs, which only the VPN ranges reach.
# Descriptions keep to the characters EC2 accepts there (no apostrophes).

locals {
  roles = ["webserver", "kafka", "spark", "gold", "airflow"]

  # Fixed by the compose files (only the ports above are variables there).
  kafka_broker_ports   = [9092, 9094]   # EXTERNAL listeners of kafka-1..3
  kafka_internal_ports = [29092, 29093] # INTERNAL and CONTROLLER listeners, published between Kafka hosts
  kafka_ui_port        = 8080
  spark_worker_ui      = [8081, 8082]
  docker_api_port      = 2376 # dockerd with TLS client certificates (infrastructure/deploy/docker-daemon.json)

  # group -> {ports = [from, to], source = group} rows.
  group_rules = {
    kafka-brokers-from-webserver  = { group = "kafka", ports = local.kafka_broker_ports, source = "webserver", why = "producers" }
    kafka-brokers-from-spark      = { group = "kafka", ports = local.kafka_broker_ports, source = "spark", why = "the Kafka source of Spark" }
    kafka-brokers-from-airflow    = { group = "kafka", ports = local.kafka_broker_ports, source = "airflow", why = "topic checks (preflight)" }
    kafka-internal-from-kafka     = { group = "kafka", ports = local.kafka_internal_ports, source = "kafka", why = "replication and the KRaft quorum between the Kafka hosts of the zones" }
    spark-docker-from-airflow     = { group = "spark", ports = [local.docker_api_port, local.docker_api_port], source = "airflow", why = "Docker API over TLS: Spark job containers" }
    webserver-docker-from-airflow = { group = "webserver", ports = [local.docker_api_port, local.docker_api_port], source = "airflow", why = "Docker API over TLS: producer containers" }
    gold-postgres-from-spark      = { group = "gold", ports = [var.postgres_port, var.postgres_port], source = "spark", why = "marts loader, live marts" }
    gold-postgres-from-airflow    = { group = "gold", ports = [var.postgres_port, var.postgres_port], source = "airflow", why = "Airflow metadata database" }
  }

  # group -> {ports, cidrs} rows: the web UIs, each reached from a VPN range only.
  cidr_rules = {
    kafka-ui         = { group = "kafka", ports = [local.kafka_ui_port, local.kafka_ui_port], cidrs = var.admin_cidrs, why = "Kafka UI" }
    spark-master-ui  = { group = "spark", ports = [var.spark_master_ui_port, var.spark_master_ui_port], cidrs = var.admin_cidrs, why = "Spark master UI" }
    spark-worker-uis = { group = "spark", ports = local.spark_worker_ui, cidrs = var.admin_cidrs, why = "Spark worker UIs" }
    superset         = { group = "gold", ports = [var.superset_port, var.superset_port], cidrs = var.analyst_cidrs, why = "Superset" }
    airflow-ui       = { group = "airflow", ports = [var.airflow_port, var.airflow_port], cidrs = var.admin_cidrs, why = "Airflow UI" }
  }

  cidr_rule_rows = merge([
    for key, rule in local.cidr_rules : {
      for cidr in rule.cidrs : "${key}-${cidr}" => merge(rule, { cidr = cidr })
    }
  ]...)
}

resource "aws_security_group" "role" {
  #checkov:skip=CKV2_AWS_5:attached by the host module, which checkov does not follow from here
  for_each    = toset(local.roles)
  name        = "${var.name}-${each.key}"
  description = "TripClick ${each.key} hosts"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-${each.key}" }
}

resource "aws_vpc_security_group_ingress_rule" "from_group" {
  for_each                     = local.group_rules
  security_group_id            = aws_security_group.role[each.value.group].id
  referenced_security_group_id = aws_security_group.role[each.value.source].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.ports[0]
  to_port                      = each.value.ports[1]
  description                  = each.value.why
}

resource "aws_vpc_security_group_ingress_rule" "from_cidr" {
  for_each          = local.cidr_rule_rows
  security_group_id = aws_security_group.role[each.value.group].id
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.ports[0]
  to_port           = each.value.ports[1]
  description       = each.value.why
}

# Outbound: HTTPS (registries, S3, SSM, GHCR, the release checkout) and HTTP (Debian's mirrors sign
# their indexes, so plain HTTP is their normal transport) anywhere; anything inside the VPC, whose
# inbound side the rules above already restrict.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = aws_security_group.role
  security_group_id = each.value.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "registries, S3, SSM, source checkout"
}

resource "aws_vpc_security_group_egress_rule" "http" {
  for_each          = aws_security_group.role
  security_group_id = each.value.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  description       = "Debian package mirrors"
}

resource "aws_vpc_security_group_egress_rule" "vpc" {
  for_each          = aws_security_group.role
  security_group_id = each.value.id
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "-1"
  description       = "other hosts of the deployment"
}
