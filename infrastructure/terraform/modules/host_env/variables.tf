variable "hosts" {
  description = "Every host: its role (webserver, kafka, spark, gold, airflow), private address and zone."
  type = map(object({
    role    = string
    address = string
    zone    = string
  }))

  validation {
    condition     = length([for h in values(var.hosts) : h if h.role == "kafka"]) == 3
    error_message = "messaging/kafka-compose.yaml has three brokers and three controllers: give exactly three kafka hosts."
  }
  validation {
    condition     = alltrue([for name in ["webserver0", "webserver1", "spark"] : contains(keys(var.hosts), name)])
    error_message = "The DAG starts containers on hosts named webserver0, webserver1 and spark (DOCKER_URL_*)."
  }
  validation {
    condition     = length([for h in values(var.hosts) : h if h.role == "gold"]) == 1 && length([for h in values(var.hosts) : h if h.role == "airflow"]) == 1
    error_message = "Give exactly one gold and one airflow host."
  }
}

variable "lake_root" {
  description = "LAKE_ROOT (s3a://<bucket>/)."
  type        = string
}

variable "s3_bucket" {
  description = "S3_BUCKET."
  type        = string
}

variable "s3_endpoint" {
  description = "S3_ENDPOINT: the regional S3 endpoint, so S3A's path-style requests reach the bucket's region."
  type        = string
}

variable "kafka_topic" {
  description = "KAFKA_TOPIC."
  type        = string
}

variable "kafka_dlq_topic" {
  description = "KAFKA_DLQ_TOPIC."
  type        = string
}

variable "kafka_manifest_topic" {
  description = "KAFKA_MANIFEST_TOPIC."
  type        = string
}

variable "image_registry" {
  description = "IMAGE_REGISTRY: prefix of every project image, ending with '/' (empty: images built on each host)."
  type        = string
}

variable "image_tag" {
  description = "IMAGE_TAG of every project image."
  type        = string
}

variable "postgres_port" {
  description = "POSTGRES_PORT."
  type        = number
}

variable "superset_port" {
  description = "SUPERSET_PORT."
  type        = number
}

variable "airflow_port" {
  description = "AIRFLOW_PORT."
  type        = number
}

variable "spark_master_ui_port" {
  description = "SPARK_MASTER_UI_PORT."
  type        = number
}
