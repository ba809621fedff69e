"""The native platform against real services: status, replication, roles, S3."""
from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg2
import pytest

from gold.database import connect_loader, connect_reader
from infrastructure.local import s3
from infrastructure.settings import REPO_ROOT
from messaging.topics import TopicSpec, admin_client, ensure_topic
from tests.platform.kafka_helpers import consume, produce

pytestmark = pytest.mark.integration


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_status_reports_every_service_healthy(platform):
    result = run_cli("infrastructure.local.services", "status", "platform")
    assert result.returncode == 0, result.stdout + result.stderr
    body = result.stdout.splitlines()[1:-1]
    assert len(body) == 8 and all(line.endswith(" healthy") for line in body), result.stdout
    assert result.stdout.splitlines()[-1] == "platform: 8/8 services healthy"


def test_record_produced_with_acks_all_is_consumed_back(platform):
    topic = f"test_roundtrip_{uuid.uuid4().hex[:8]}"
    admin = admin_client(platform)
    ensure_topic(admin, TopicSpec(topic))
    try:
        sent = produce(platform.kafka_brokers, topic, 50)
        assert consume(platform.kafka_brokers, topic, 50) == sent
    finally:
        admin.delete_topics([topic])[topic].result()


def test_loader_writes_and_reader_only_reads(platform):
    table = f"gold.test_roles_{uuid.uuid4().hex[:8]}"
    with connect_loader(platform) as loader:
        loader.autocommit = True
        with loader.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
            cur.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")
    try:
        reader = connect_reader(platform)
        reader.autocommit = True
        with reader.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {table}")   # default privileges cover new tables
            assert cur.fetchone()[0] == 2
            # Read-only is only the reader's default: with it off, its privileges must refuse on their own.
            cur.execute("SET default_transaction_read_only = off")
            for statement in (f"INSERT INTO {table} VALUES (3, 'c')", f"UPDATE {table} SET v = 'x'",
                              f"DELETE FROM {table}", "CREATE TABLE gold.test_reader_may_not (id int)",
                              "CREATE TABLE public.test_reader_may_not (id int)"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
        reader.close()
    finally:
        with connect_loader(platform) as loader:
            loader.autocommit = True
            loader.cursor().execute(f"DROP TABLE {table}")


def test_s3_api_create_list_put_get(platform):
    client = s3.client(platform)
    bucket = f"test-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    try:
        assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
        assert platform.s3_bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
        client.put_object(Bucket=bucket, Key="silver/event_date=2026-01-01/part-0.json", Body=b'{"a": 1}')
        listed = client.list_objects_v2(Bucket=bucket, Prefix="silver/")["Contents"]
        assert [o["Key"] for o in listed] == ["silver/event_date=2026-01-01/part-0.json"]
        got = client.get_object(Bucket=bucket, Key="silver/event_date=2026-01-01/part-0.json")["Body"].read()
        assert got == b'{"a": 1}'
    finally:
        for obj in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
