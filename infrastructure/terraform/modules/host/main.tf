# One host of the guide: a Debian 12 instance at a fixed private address, with an instance role that
# can read only its own parameters (<prefix>/<host>/*: the .env secrets, its TLS files), and a
# cloud-init that installs Docker, the release checkout, the certificates and the .env, then starts
# the role's compose file (files/bootstrap.sh).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  parameters_arn = "arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:parameter${var.parameter_prefix}/${var.host}"

  bootstrap_config = {
    host                = var.host
    role                = var.role
    region              = data.aws_region.current.name
    parameter_prefix    = var.parameter_prefix
    source_repository   = var.source_repository
    source_ref          = var.source_ref
    compose_file        = var.compose_file
    compose_override    = var.compose_override != ""
    compose_services    = var.compose_services
    run_once            = var.run_once
    run_once_waits_for  = var.run_once_waits_for
    docker_api          = var.docker_api
    docker_client_hosts = var.docker_client_hosts
    wait_for            = var.wait_for
    session_manager     = var.session_manager
  }

  files = merge(
    {
      "bootstrap.sh"   = { content = file("${path.module}/files/bootstrap.sh"), mode = "0700" }
      "merge_env.py"   = { content = file("${path.module}/files/merge_env.py"), mode = "0600" }
      "bootstrap.json" = { content = jsonencode(local.bootstrap_config), mode = "0600" }
      "terraform.env"  = { content = join("", [for k in sort(keys(var.env)) : "${k}=${var.env[k]}\n"]), mode = "0600" }
    },
    var.compose_override == "" ? {} : { "compose.override.yaml" = { content = var.compose_override, mode = "0600" } }
  )

  # Everything is written base64-encoded: no YAML quoting of scripts, and nothing secret is in it.
  cloud_config = {
    package_update = true
    packages       = ["docker.io", "docker-compose", "git", "awscli", "python3", "ca-certificates", "curl"]
    write_files = [for name, f in local.files : {
      path        = "/opt/tripclick-bootstrap/${name}"
      encoding    = "b64"
      content     = base64encode(f.content)
      permissions = f.mode
    }]
    runcmd = [["bash", "/opt/tripclick-bootstrap/bootstrap.sh"]]
  }
}

resource "aws_instance" "this" {
  #checkov:skip=CKV_AWS_126:basic 5-minute metrics suffice; detailed monitoring costs per instance
  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  private_ip                  = var.address
  vpc_security_group_ids      = [var.security_group_id]
  iam_instance_profile        = aws_iam_instance_profile.this.name
  associate_public_ip_address = false
  ebs_optimized               = true
  # Compressed: EC2 takes 16 KB of user data, and cloud-init unpacks gzip itself.
  user_data_base64 = base64gzip("#cloud-config\n${yamlencode(local.cloud_config)}")

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # 1 hop: the host's own tools reach the instance role, containers do not.
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.volume_size_gb
    encrypted             = true
    delete_on_termination = true
  }

  tags = { Name = "${var.name}-${var.host}", "tripclick:role" = var.role, "tripclick:host" = var.host }

  # User data only matters at first boot; changing it would stop and start a running host. A release
  # reaches running hosts through bootstrap.sh <tag> (infrastructure/README.md, "Release"), and a
  # newer Debian image only new hosts.
  lifecycle {
    ignore_changes = [ami, user_data_base64]
  }
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-${var.host}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_instance_profile" "this" {
  name = "${var.name}-${var.host}"
  role = aws_iam_role.this.name
}

# The host's own parameters only; SecureStrings under the AWS managed key aws/ssm need no KMS grant.
# No S3: the Spark jobs reach the lake with their own keys (lake_access), producers never.
data "aws_iam_policy_document" "own_parameters" {
  statement {
    sid       = "ReadOwnParameters"
    actions   = ["ssm:GetParameter"]
    resources = ["${local.parameters_arn}/*"]
  }
}

resource "aws_iam_role_policy" "own_parameters" {
  name   = "read-own-parameters"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.own_parameters.json
}

# Session Manager and Run Command, written out rather than AmazonSSMManagedInstanceCore: that managed
# policy also allows ssm:GetParameter on every parameter, which would let any host read the others'
# secrets. These actions take no resource ARN.
data "aws_iam_policy_document" "session_manager" {
  #checkov:skip=CKV_AWS_111:the agent's channel actions have no resource-level permissions
  #checkov:skip=CKV_AWS_356:the agent's channel actions have no resource-level permissions
  statement {
    sid = "SessionManagerAndRunCommand"
    actions = [
      "ssm:UpdateInstanceInformation",
      "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
      "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
      "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "session_manager" {
  count  = var.session_manager ? 1 : 0
  name   = "session-manager"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.session_manager.json
}
