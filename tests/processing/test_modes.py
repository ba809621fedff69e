"""Staged publication in S3 mode (s3a through the local S3 endpoint). Every job on an S3 lake runs in
tests/deployment/test_docker_e2e.py: every Spark step of both DAGs on the compose file's master and workers with
the lake in the S3 API server's bucket, its marts checked row for row and its markers, recorded offsets and
streaming checkpoint checked as bucket objects."""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from infrastructure.local.s3 import client as s3_client
from processing.spark.session import build_session
from tests.processing.helpers import check_staged_publication

pytestmark = pytest.mark.integration


@pytest.fixture()
def s3_bucket(platform):
    """A fresh bucket on the platform's S3 API server (S3Proxy, on-disk store); emptied and removed after."""
    client = s3_client(platform)
    bucket = f"test-lake-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    yield bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


def test_dates_staged_together_are_published_one_by_one_on_s3(platform, spark, s3_bucket):
    root = f"s3a://{s3_bucket}/lake"
    # the shared session, with the s3a settings a job of this lake sets (build_session reuses the running JVM)
    session = build_session(dataclasses.replace(platform, lake_root=root), "test-staged-s3")
    check_staged_publication(session, root)
