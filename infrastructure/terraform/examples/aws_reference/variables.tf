variable "name" {
  description = "Name of the deployment: prefix of every resource name."
  type        = string
  default     = "tripclick"
}

variable "region" {
  description = "AWS region (the cost figures of infrastructure/README.md are us-east-1's)."
  type        = string
  default     = "us-east-1"
}

variable "availability_zones" {
  description = "Zones to use, at least two; empty = the region's first three. Three zones keep the KRaft quorum through a zone outage."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.20.0.0/16"
}

variable "admin_cidrs" {
  description = "Admin VPN or bastion ranges: the only sources of the Kafka, Spark and Airflow UIs."
  type        = list(string)
}

variable "analyst_cidrs" {
  description = "Analysts' VPN ranges, the only sources of Superset; empty = admin_cidrs."
  type        = list(string)
  default     = []
}

variable "lake_bucket" {
  description = "Lake bucket (S3_BUCKET, LAKE_ROOT=s3a://<bucket>/). The default is the settings' name; AWS bucket names are global, so a real deployment picks its own."
  type        = string
  default     = "tripclick-lake"
}

variable "lake_customer_managed_key" {
  description = "Encrypt the lake with its own KMS key (1 USD a month) rather than SSE-S3."
  type        = bool
  default     = true
}

variable "bronze_retention_days" {
  description = "Days Bronze objects are kept (0 = forever). Checkpoints are never expired."
  type        = number
  default     = 365
}

variable "lake_force_destroy" {
  description = "Let `terraform destroy` delete a lake that still holds objects."
  type        = bool
  default     = false
}

variable "kafka_topic" {
  description = "KAFKA_TOPIC (infrastructure/settings.py's default)."
  type        = string
  default     = "tripclick_raw_logs"
}

variable "kafka_dlq_topic" {
  description = "KAFKA_DLQ_TOPIC."
  type        = string
  default     = "tripclick_raw_logs_dlq"
}

variable "kafka_manifest_topic" {
  description = "KAFKA_MANIFEST_TOPIC."
  type        = string
  default     = "tripclick_producer_manifests"
}

variable "image_registry" {
  description = "IMAGE_REGISTRY, ending with '/': where the release workflow pushed the images (ghcr.io/<owner>/)."
  type        = string
  default     = ""

  validation {
    condition     = var.image_registry == "" || endswith(var.image_registry, "/")
    error_message = "image_registry ends with '/' (e.g. ghcr.io/example-org/)."
  }
}

variable "image_tag" {
  description = "IMAGE_TAG: the release's version (its git tag without the leading v)."
  type        = string
  default     = "0.1.0"
}

variable "source_repository" {
  description = "Git URL of this project; hosts clone it at source_ref for the compose files."
  type        = string
}

variable "source_ref" {
  description = "Tag checked out on the hosts; empty = v<image_tag>."
  type        = string
  default     = ""
}

variable "parameter_prefix" {
  description = "SSM Parameter Store prefix of the hosts' secrets (put_secrets.py writes there)."
  type        = string
  default     = "/tripclick"
}

variable "session_manager" {
  description = "SSM agent and Session Manager on every host (shells and UI port forwarding without SSH)."
  type        = bool
  default     = true
}

# The ports a deployment's .env may change; defaults are .env.docker.example's.
variable "postgres_port" {
  description = "POSTGRES_PORT."
  type        = number
  default     = 5432
}

variable "superset_port" {
  description = "SUPERSET_PORT."
  type        = number
  default     = 8088
}

variable "airflow_port" {
  description = "AIRFLOW_PORT."
  type        = number
  default     = 8080
}

variable "spark_master_ui_port" {
  description = "SPARK_MASTER_UI_PORT."
  type        = number
  default     = 8080
}

variable "instance_types" {
  description = "EC2 type per role (infrastructure/README.md, 'Hosts and sizes'; the guide's one Kafka host is three here)."
  type        = map(string)
  default = {
    webserver = "t3.medium"
    kafka     = "m6i.large"
    spark     = "m6i.2xlarge"
    gold      = "m6i.large"
    airflow   = "t3.large"
  }
}

variable "volume_sizes_gb" {
  description = "Root volume (gp3) per role, in GiB."
  type        = map(number)
  default = {
    webserver = 30
    kafka     = 50
    spark     = 50
    gold      = 50
    airflow   = 30
  }
}
