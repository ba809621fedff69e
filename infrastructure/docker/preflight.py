"""Docker-mode preflight, run on the Airflow host before the first DAG run: one line per check.

    python -m infrastructure.docker.preflight        (make preflight; reads .env / ENV_FILE like everything)

First the settings check (infrastructure.settings.check) of what preflight and the DAG use: their secrets
given and strong (and any other secret the .env gives strong: the Airflow host of the Terraform reference
gets only its own), no unconsented plaintext Docker API, ...; when it refuses, nothing is probed. Then, with
the settings and certificates the DAG will use: the expiry of each host's ca.pem and cert.pem under
DOCKER_CERT_DIR (FAIL under 30 days left, WARN under 60); each host's Docker API over TLS; the
project images at IMAGE_REGISTRY/IMAGE_TAG on the hosts that run them; DOCKER_NETWORK on each host; the
day-file mount of each web server (a producer container lists /data); Kafka's advertised listeners
(not loopback, reachable) and topics; an S3 write and delete under the lake; a PostgreSQL login for
each role. Exit 1 when any check fails; warnings are printed and do not fail.
"""
from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from infrastructure.docker.certs import certificate_problems
from infrastructure.settings import check, is_loopback, load, resolve
from orchestration.config import SPARK_JOB_SECRETS, DockerHost, dag_config
from orchestration.steps import PRODUCER_IMAGE, STEPS

Check = tuple[str, Callable[[], str]]  # name, probe returning a detail line (raises on failure)
# The secrets preflight requires: the step containers' (the DAG hands them over) and the logins it probes.
PREFLIGHT_SECRETS = (*SPARK_JOB_SECRETS, "POSTGRES_RO_PASSWORD", "AIRFLOW_DB_PASSWORD")


class Warned(Exception):
    """Raised by a probe whose check passed with a warning: printed as WARN, not counted as failed."""


def _api(host: DockerHost) -> tuple[str, dict]:
    url = urlsplit(host.url)
    scheme = "https" if host.tls else "http"
    options = {"cert": (host.client_cert, host.client_key), "verify": host.ca_cert} if host.tls else {}
    return f"{scheme}://{url.hostname}:{url.port}", {**options, "timeout": 20}


def docker_get(host: DockerHost, path: str) -> dict:
    base, options = _api(host)
    response = requests.get(base + path, **options)
    response.raise_for_status()
    return response.json()


def list_mount(host: DockerHost, image: str, source: str, network: str) -> str:
    """Run `image` with source mounted read-only at /data (as the DAG does); return what it printed."""
    base, options = _api(host)
    spec = {"Image": image, "Cmd": ["python", "-c", "import os; print(len(os.listdir('/data')))"],
            "HostConfig": {"Mounts": [{"Type": "bind", "Source": source, "Target": "/data", "ReadOnly": True}],
                           "NetworkMode": network}}
    created = requests.post(f"{base}/containers/create?name=tripclick-preflight-{uuid.uuid4().hex[:8]}",
                            json=spec, **options)
    created.raise_for_status()
    cid = created.json()["Id"]
    try:
        requests.post(f"{base}/containers/{cid}/start", **options).raise_for_status()
        code = requests.post(f"{base}/containers/{cid}/wait", **options).json()["StatusCode"]
        logs = requests.get(f"{base}/containers/{cid}/logs?stdout=1&stderr=1", **options).content
        text = "".join(chr(b) for b in logs if 32 <= b < 127 or b == 10).strip()
        if code != 0:
            raise RuntimeError(f"container exited {code}: {text[-200:]}")
        return text
    finally:
        requests.delete(f"{base}/containers/{cid}?force=1", **options)


def certificate_expiry(host: DockerHost, now: datetime) -> str:
    problems = certificate_problems([Path(host.ca_cert), Path(host.client_cert)], now)
    summary = "; ".join(map(str, problems))
    if any(problem.failing for problem in problems):
        raise RuntimeError(summary)
    if problems:
        raise Warned(summary)
    return "ca.pem and cert.pem valid for 60 days or more"


def docker_checks(env: dict[str, str]) -> list[Check]:
    cfg = dag_config(env)
    checks: list[Check] = []
    images_by_host: dict[str, set[str]] = {}
    for step in STEPS:
        images_by_host.setdefault(step.host, set()).add(step.image_ref(cfg.image_registry, cfg.image_tag))
    now = datetime.now(timezone.utc)
    for name, host in cfg.docker_hosts.items():
        if host.tls:
            checks.append((f"certificate expiry {name}", lambda h=host: certificate_expiry(h, now)))
        checks.append((f"docker API {name} {host.url} (TLS={int(host.tls)})",
                       lambda h=host: "engine " + docker_get(h, "/version")["Version"]))
        for ref in sorted(images_by_host.get(name, ())):
            checks.append((f"image {ref} on {name}",
                           lambda h=host, r=ref: docker_get(h, f"/images/{quote(r, safe='')}/json")["Id"][:19]))
        checks.append((f"network {cfg.docker_network} on {name}",
                       lambda h=host: "driver " + docker_get(h, f"/networks/{cfg.docker_network}")["Driver"]))
        if any(step.host == name and step.image == PRODUCER_IMAGE for step in STEPS):
            image = f"{cfg.image_registry}{PRODUCER_IMAGE}:{cfg.image_tag}"
            checks.append((f"data mount {cfg.producer_data_dir} on {name}",
                           lambda h=host, i=image: f"{list_mount(h, i, cfg.producer_data_dir, cfg.docker_network)}"
                                                   " entries in /data"))
    return checks


def kafka_listeners(settings) -> str:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": settings.kafka_brokers}).list_topics(timeout=10)
    advertised = [f"{b.host}:{b.port}" for b in metadata.brokers.values()]
    for broker in metadata.brokers.values():
        if is_loopback(broker.host):
            raise RuntimeError(f"broker {broker.id} advertises loopback {broker.host}:{broker.port}")
        socket.create_connection((broker.host, broker.port), timeout=5).close()
    missing = {settings.kafka_topic, settings.kafka_dlq_topic} - set(metadata.topics)
    if missing:
        raise RuntimeError(f"topics missing: {', '.join(sorted(missing))}")
    return f"{len(advertised)} brokers advertise {', '.join(sorted(advertised))}"


def s3_write_delete(settings) -> str:
    from infrastructure.local import s3

    bucket, key = s3.location(f"{settings.lake_root.rstrip('/')}/_preflight/{uuid.uuid4().hex}")
    client = s3.client(settings)
    client.put_object(Bucket=bucket, Key=key, Body=b"preflight")
    client.delete_object(Bucket=bucket, Key=key)
    return f"put + delete s3://{bucket}/{key}"


def postgres_login(settings, user: str, password: str, database: str) -> str:
    import psycopg2

    with psycopg2.connect(host=settings.postgres_host, port=settings.postgres_port, dbname=database, user=user,
                          password=password, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user")
        return f"{cur.fetchone()[0]}@{settings.postgres_host}:{settings.postgres_port}/{database}"


def service_checks(merged: dict[str, str]) -> list[Check]:
    settings = load(merged)
    roles = [(settings.postgres_user, settings.postgres_password, settings.postgres_db),
             (settings.postgres_ro_user, settings.postgres_ro_password, settings.postgres_db),
             (settings.airflow_db_user, settings.airflow_db_password, settings.airflow_db)]
    if merged.get("SUPERSET_DB_PASSWORD"):
        roles.append((merged["SUPERSET_DB_USER"], merged["SUPERSET_DB_PASSWORD"], merged["SUPERSET_DB"]))
    return [("kafka advertised listeners", lambda: kafka_listeners(settings)),
            (f"s3 write and delete under {settings.lake_root}", lambda: s3_write_delete(settings)),
            *[(f"postgres login {user}", lambda u=user, p=password, d=db: postgres_login(settings, u, p, d))
              for user, password, db in roles]]


def run(checks: list[Check]) -> int:
    failed = warned = 0
    for name, probe in checks:
        try:
            print(f"preflight: OK   {name}: {probe()}", flush=True)
        except Warned as warning:
            warned += 1
            print(f"preflight: WARN {name}: {warning}", flush=True)
        except Exception as exc:  # every failure is reported, none stops the others
            failed += 1
            print(f"preflight: FAIL {name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                  flush=True)
    print(f"preflight: checks={len(checks)} warned={warned} failed={failed}")
    return 1 if failed else 0


def main() -> int:
    if check(required=PREFLIGHT_SECRETS) != 0:  # no probe with settings docker mode refuses
        print("preflight: checks=0 failed=1 (the settings check refused the configuration)")
        return 1
    merged = resolve()
    return run(docker_checks(merged) + service_checks(merged))


if __name__ == "__main__":
    sys.exit(main())
