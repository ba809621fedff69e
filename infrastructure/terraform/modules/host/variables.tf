variable "name" {
  description = "Deployment prefix of resource names."
  type        = string
}

variable "host" {
  description = "Host name of the guide (webserver0, webserver1, kafka1..3, spark, gold, airflow)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*$", var.host))
    error_message = "Host names are lower-case letters, digits and dashes."
  }
}

variable "role" {
  description = "What the host runs: webserver, kafka, spark, gold or airflow."
  type        = string

  validation {
    condition     = contains(["webserver", "kafka", "spark", "gold", "airflow"], var.role)
    error_message = "role is one of webserver, kafka, spark, gold, airflow."
  }
}

variable "subnet_id" {
  description = "Private subnet of the host's zone."
  type        = string
}

variable "address" {
  description = "Fixed private address (it is in the Docker API certificates and in every .env)."
  type        = string
}

variable "security_group_id" {
  description = "Security group of the host's role."
  type        = string
}

variable "ami_id" {
  description = "Debian 12 image."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
}

variable "volume_size_gb" {
  description = "Root volume (gp3), which also holds Docker's images and volumes."
  type        = number
}

variable "parameter_prefix" {
  description = "SSM Parameter Store prefix; the host reads <prefix>/<host>/* and nothing else."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_.-]+$", var.parameter_prefix))
    error_message = "parameter_prefix is one path element with a leading slash, e.g. /tripclick."
  }
}

variable "source_repository" {
  description = "Git URL of this project, cloned on the host at source_ref (the compose files and their mounts)."
  type        = string
}

variable "source_ref" {
  description = "Release tag (or branch) checked out on the host."
  type        = string
}

variable "env" {
  description = "The .env values Terraform decides for this host (host_env module)."
  type        = map(string)
}

variable "compose_file" {
  description = "Compose file of the role, relative to the checkout."
  type        = string
}

variable "compose_override" {
  description = "YAML merged over the compose file (-f), empty for none."
  type        = string
  default     = ""
}

variable "compose_services" {
  description = "Services to start (with --no-deps); empty starts the whole file."
  type        = list(string)
  default     = []
}

variable "docker_api" {
  description = "Expose the Docker API on 2376 with TLS client certificates (web servers and Spark)."
  type        = bool
  default     = false
}

variable "docker_client_hosts" {
  description = "Docker API hosts this host drives: their client certificates go into DOCKER_CERT_DIR (Airflow)."
  type        = list(string)
  default     = []
}

variable "wait_for" {
  description = "address:port pairs that must accept connections before compose starts (Airflow waits for PostgreSQL)."
  type        = list(string)
  default     = []
}

variable "run_once" {
  description = "One-shot services run after the others are up (docker-compose run --rm --no-deps)."
  type        = list(string)
  default     = []
}

variable "run_once_waits_for" {
  description = "address:port pairs that must accept connections before the one-shot services run."
  type        = list(string)
  default     = []
}

variable "session_manager" {
  description = "Install the SSM agent and allow Session Manager: shells and port forwarding without SSH."
  type        = bool
  default     = true
}
