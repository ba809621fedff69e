# The lake bucket of infrastructure/README.md ("S3: bucket layout and IAM policy"): private, encrypted,
# versioned, TLS only. Lifecycle rules trim Bronze and old versions but never expire a current object
# under checkpoints/: a lost streaming checkpoint makes the next run start from the earliest offset.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_18:access logs need a second bucket; CloudTrail data events are the audit trail of choice here
  #checkov:skip=CKV_AWS_144:cross-region replication doubles storage; the lake is rebuilt from Kafka and Bronze
  #checkov:skip=CKV2_AWS_62:nothing consumes bucket events; Airflow drives every step
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = { Name = var.bucket_name }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_kms_key" "lake" {
  count                   = var.customer_managed_key ? 1 : 0
  description             = "TripClick lake ${var.bucket_name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "lake" {
  count         = var.customer_managed_key ? 1 : 0
  name          = "alias/${replace(var.bucket_name, ".", "-")}" # aliases take no dots, bucket names may
  target_key_id = aws_kms_key.lake[0].key_id
}

# The account administers the key; who may USE it is said by IAM policies (lake_access), as with any
# key whose policy delegates to IAM.
data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:in a key policy, Resource "*" is this key alone
  #checkov:skip=CKV_AWS_111:in a key policy, Resource "*" is this key alone
  #checkov:skip=CKV_AWS_356:in a key policy, Resource "*" is this key alone
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.customer_managed_key ? "aws:kms" : "AES256"
      kms_master_key_id = var.customer_managed_key ? aws_kms_key.lake[0].arn : null
    }
    # One data key per bucket instead of per object: Spark writes many small files.
    bucket_key_enabled = var.customer_managed_key
  }
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyPlainHTTP"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lake.arn, "${aws_s3_bucket.lake.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket     = aws_s3_bucket.lake.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

locals {
  # Days a CURRENT object under each prefix the code writes is kept; 0 = never expired. Checkpoints
  # stay 0: a lost streaming checkpoint makes the next run start from the earliest offset. _staging/
  # holds the ETL's half-written versions, which a finished job has already published or dropped.
  current_object_days = {
    "bronze/"      = var.bronze_retention_days
    "silver/"      = 0
    "quarantine/"  = 0
    "gold/"        = 0
    "checkpoints/" = 0
    "quality/"     = 0
    "_staging/"    = 7
    "_preflight/"  = 1
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket     = aws_s3_bucket.lake.id
  depends_on = [aws_s3_bucket_versioning.lake]

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # One rule per zone: replaced or deleted versions go after noncurrent_version_days; current objects
  # only where current_object_days says so (S3 refuses two expiration rules on one prefix).
  dynamic "rule" {
    for_each = local.current_object_days
    content {
      id     = "zone-${trimsuffix(trimprefix(rule.key, "_"), "/")}"
      status = "Enabled"
      filter {
        prefix = rule.key
      }
      noncurrent_version_expiration {
        noncurrent_days = var.noncurrent_version_days
      }
      dynamic "expiration" {
        for_each = rule.value > 0 ? [rule.value] : []
        content {
          days = expiration.value
        }
      }
      # Without a days rule, delete markers left alone after their versions expired are removed.
      dynamic "expiration" {
        for_each = rule.value > 0 ? [] : [true]
        content {
          expired_object_delete_marker = true
        }
      }
    }
  }
}
