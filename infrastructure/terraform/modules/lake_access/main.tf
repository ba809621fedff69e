# The one identity that touches the lake: the Spark jobs' S3A keys (AWS_ACCESS_KEY_ID/SECRET_ACCESS_KEY,
# kept only in Airflow's Connection tripclick_s3 and handed to each job container). Docker mode requires
# explicit keys, so this is an IAM user; its access key is created outside Terraform (see the README) so
# the secret never lands in the state. Producers, Kafka, Gold and the hosts themselves get no S3 access.

resource "aws_iam_user" "spark_jobs" {
  #checkov:skip=CKV_AWS_273:S3A in docker mode reads static keys; SSO users cannot be given to job containers
  name = "${var.name}-spark-jobs"
  # Its access key is made outside Terraform; destroy must still be able to remove the user.
  force_destroy = true
}

resource "aws_iam_group" "lake_users" {
  name = "${var.name}-lake-users"
}

resource "aws_iam_group_membership" "lake_users" {
  name  = "${var.name}-lake-users"
  group = aws_iam_group.lake_users.name
  users = [aws_iam_user.spark_jobs.name]
}

# The policy of infrastructure/README.md, statement for statement (tests/infrastructure compares
# them), plus the key when the lake has a customer managed one.
data "aws_iam_policy_document" "lake" {
  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [var.bucket_arn]
  }

  statement {
    sid = "ReadWriteTheLake"
    # DeleteObject: Spark replaces a date's partition, and s3a renames by copy + delete.
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts"]
    resources = ["${var.bucket_arn}/*"]
  }

  dynamic "statement" {
    for_each = var.use_kms_key ? [var.kms_key_arn] : []
    content {
      sid       = "UseTheLakeKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_group_policy" "lake" {
  name   = "read-write-the-lake"
  group  = aws_iam_group.lake_users.name
  policy = data.aws_iam_policy_document.lake.json
}
