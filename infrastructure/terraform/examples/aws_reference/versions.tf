terraform {
  # Terraform 1.6+ or OpenTofu 1.6+.
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
  }

  # Filled in by `terraform init -backend-config=backend.hcl` (see backend.hcl.example); S3-native
  # locking (use_lockfile) needs Terraform 1.10+ / OpenTofu 1.10+.
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project    = "tripclick-pipeline"
      deployment = var.name
    }
  }
}
