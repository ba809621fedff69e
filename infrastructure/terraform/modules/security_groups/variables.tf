variable "name" {
  description = "Prefix of every group name."
  type        = string
}

variable "vpc_id" {
  description = "VPC the groups belong to."
  type        = string
}

variable "vpc_cidr" {
  description = "Address range of the VPC: hosts may open connections to each other inside it."
  type        = string
}

variable "admin_cidrs" {
  description = "Address ranges of the admin VPN or bastion: the Kafka, Spark and Airflow UIs."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidrs) > 0 && alltrue([for c in var.admin_cidrs : !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "admin_cidrs must name the VPN or bastion ranges; the UIs have no or weak authentication and are never public."
  }
}

variable "analyst_cidrs" {
  description = "Address ranges of the analysts' VPN: Superset."
  type        = list(string)

  validation {
    condition     = length(var.analyst_cidrs) > 0 && alltrue([for c in var.analyst_cidrs : !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "analyst_cidrs must name the analysts' VPN ranges; Superset is never public."
  }
}

# Ports a deployment may change in its .env; the defaults are .env.docker.example's.
variable "postgres_port" {
  description = "POSTGRES_PORT: PostgreSQL on the Gold host."
  type        = number
  default     = 5432
}

variable "superset_port" {
  description = "SUPERSET_PORT: Superset on the Gold host."
  type        = number
  default     = 8088
}

variable "airflow_port" {
  description = "AIRFLOW_PORT: the Airflow UI and REST API."
  type        = number
  default     = 8080
}

variable "spark_master_ui_port" {
  description = "SPARK_MASTER_UI_PORT: the Spark master's web UI."
  type        = number
  default     = 8080
}
