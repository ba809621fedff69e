variable "name" {
  description = "Prefix of every resource name and Name tag."
  type        = string
}

variable "cidr" {
  description = "Address range of the VPC; each zone gets a private /24 (hosts) and a public /24 (NAT gateway)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "availability_zones" {
  description = "Zones of the private subnets, in order; hosts are spread over them (at least two)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones: the Kafka hosts are spread over them."
  }
}

variable "flow_log_retention_days" {
  description = "Days the VPC flow logs are kept in CloudWatch Logs."
  type        = number
  default     = 365
}
