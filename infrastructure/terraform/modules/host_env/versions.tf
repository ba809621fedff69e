# No provider: this module only computes, so `terraform console` can show its outputs offline.
terraform {
  required_version = ">= 1.6.0"
}
