output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "Address range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "One private subnet per zone, in the order of var.availability_zones."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidrs" {
  description = "Address ranges of the private subnets (hosts get fixed addresses in them)."
  value       = aws_subnet.private[*].cidr_block
}

output "availability_zones" {
  description = "Zones of the private subnets, in order."
  value       = var.availability_zones
}
