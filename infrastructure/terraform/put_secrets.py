#!/usr/bin/env python3
"""Put each host's secrets into SSM Parameter Store, where only that host's instance role reads them.

    terraform -chdir=infrastructure/terraform/examples/aws_reference output -json secrets_layout > layout.json
    python3 infrastructure/terraform/put_secrets.py --layout layout.json --env .env --certs ./docker-certs

--env is the file `make docker-secrets` wrote; --certs the folder `make docker-certs` wrote. Each host
gets, as SecureString parameters under <parameter_prefix>/<host>/:
  env                        the non-empty values its compose file interpolates (the Airflow host also
                             the read-only role's login, which `make preflight` checks), nothing else;
  docker-tls/<file>          on the Docker API hosts: ca.pem, server-cert.pem, server-key.pem;
  docker-client/<host>/<f>   on the Airflow host: ca.pem, cert.pem, key.pem per Docker API host;
  registry-auth              with --registry-auth USER:TOKEN, for a private registry.
Values travel in a temporary file (`--cli-input-json`), never on a command line. `--dry-run` prints the
parameter names and the variable names they hold, no values. Needs the AWS CLI and credentials that may
call ssm:PutParameter under the prefix. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
# What `make preflight` on the Airflow host needs beyond its compose file: a login per PostgreSQL role.
PREFLIGHT_EXTRA = ("POSTGRES_RO_USER", "POSTGRES_RO_PASSWORD")
SERVER_FILES = ("ca.pem", "server-cert.pem", "server-key.pem")
CLIENT_FILES = ("ca.pem", "cert.pem", "key.pem")


def read_env(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_variables(compose_file: str, root: Path = REPO_ROOT) -> set[str]:
    return set(_VARIABLE.findall((root / compose_file).read_text(encoding="utf-8")))


def host_env(host: dict, env: dict[str, str], root: Path = REPO_ROOT) -> str:
    """The lines of one host's `env` parameter."""
    wanted = compose_variables(host["compose_file"], root)
    if host["role"] == "airflow":
        wanted.update(PREFLIGHT_EXTRA)
    return "".join(f"{key}={env[key]}\n" for key in sorted(wanted) if env.get(key))


def parameters(layout: dict, env: dict[str, str], certs: Path | None, registry_auth: str | None,
               root: Path = REPO_ROOT) -> dict[str, str]:
    """Parameter name -> value for every host of the layout."""
    prefix = layout["parameter_prefix"].rstrip("/")
    result = {}
    for name, host in sorted(layout["hosts"].items()):
        base = f"{prefix}/{name}"
        result[f"{base}/env"] = host_env(host, env, root)
        if host["docker_api"]:
            for file in SERVER_FILES:
                result[f"{base}/docker-tls/{file}"] = _read_cert(certs, "server", name, file)
        for client in host["docker_client_hosts"]:
            for file in CLIENT_FILES:
                result[f"{base}/docker-client/{client}/{file}"] = _read_cert(certs, "airflow", client, file)
        if registry_auth:
            result[f"{base}/registry-auth"] = registry_auth
    return result


def _read_cert(certs: Path | None, side: str, host: str, file: str) -> str:
    if certs is None:
        raise SystemExit("--certs is required: the layout has Docker API hosts (make docker-certs OUT=...)")
    path = certs / side / host / file
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the docker_certs_command output of Terraform first")
    return path.read_text(encoding="utf-8")


def put(name: str, value: str, region: str) -> None:
    request = {"Name": name, "Value": value, "Type": "SecureString", "Overwrite": True}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        os.chmod(handle.name, 0o600)
        json.dump(request, handle)
    try:
        subprocess.run(["aws", "ssm", "put-parameter", "--region", region, "--cli-input-json",
                        f"file://{handle.name}"], check=True, stdout=subprocess.DEVNULL)
    finally:
        os.unlink(handle.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", required=True, type=Path, help="terraform output -json secrets_layout")
    parser.add_argument("--env", required=True, type=Path, help="the .env of make docker-secrets")
    parser.add_argument("--certs", type=Path, help="the OUT folder of make docker-certs")
    parser.add_argument("--registry-auth", help="USER:TOKEN of a private registry")
    parser.add_argument("--dry-run", action="store_true", help="print names, put nothing")
    args = parser.parse_args(argv)
    layout = json.loads(args.layout.read_text(encoding="utf-8"))
    env = read_env(args.env.read_text(encoding="utf-8"))
    for name, value in parameters(layout, env, args.certs, args.registry_auth).items():
        if args.dry_run:
            keys = [line.partition("=")[0] for line in value.splitlines()] if name.endswith("/env") else []
            print(name, " ".join(keys))
        else:
            put(name, value, layout["region"])
            print(f"put {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
