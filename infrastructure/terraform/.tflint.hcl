# Core rules only: the bundled Terraform ruleset, no plugin downloads (the AWS ruleset would need one).
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
