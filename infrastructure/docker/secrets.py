"""Fill a docker-mode env template's secrets with strong random values.

    python -m infrastructure.docker.secrets --template .env.docker.example --out .env [--force]

Only the variables in GENERATED that are empty in the template are filled; everything else is copied
as is. The output is written with mode 0600 and never overwritten without --force. Prints the names it
filled, never a value.
"""
from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

# Secrets this project owns end to end (S3 keys come from the S3 provider, so they are not here).
GENERATED = ("POSTGRES_PASSWORD", "POSTGRES_RO_PASSWORD", "POSTGRES_SUPERUSER_PASSWORD", "AIRFLOW_DB_PASSWORD",
             "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_WEBSERVER_SECRET_KEY", "SUPERSET_DB_PASSWORD",
             "SUPERSET_SECRET_KEY", "SUPERSET_ADMIN_PASSWORD", "KAFKA_UI_PASSWORD", "KAFKA_CLUSTER_ID",
             "GRAFANA_ADMIN_PASSWORD", "SPARK_AUTH_SECRET")


def new_value(name: str) -> str:
    """A fresh random value that never starts with "-", which a command line would take for an option
    (`airflow users create --password -x…` fails with a usage error)."""
    while (value := _random_value(name)).startswith("-"):
        pass
    return value


def _random_value(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":  # a Fernet key: 32 random bytes, URL-safe base64
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    if name == "KAFKA_CLUSTER_ID":  # KRaft's format: a UUID's 16 bytes, URL-safe base64 without padding
        return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    return secrets.token_urlsafe(32)


def fill(template: str) -> tuple[str, list[str]]:
    """The template's text with every empty GENERATED variable given a value; the names filled."""
    lines, filled = [], []
    for line in template.splitlines():
        name, sep, value = line.partition("=")
        if sep and name in GENERATED and not value.strip():
            line = f"{name}={new_value(name)}"
            filled.append(name)
        lines.append(line)
    return "\n".join(lines) + "\n", filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.docker.secrets",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.force:
        print(f"secrets: FAILED: {args.out} exists (secrets already issued?); --force replaces it", file=sys.stderr)
        return 1
    text, filled = fill(args.template.read_text(encoding="utf-8"))
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"secrets: wrote {args.out} (mode 0600) with {len(filled)} generated secrets: {', '.join(filled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
