"""A private PostgreSQL 15 cluster on 127.0.0.1:POSTGRES_PORT, and the re-runnable init SQL.

The server refuses to run as root, so when we are root the cluster belongs to the `postgres` OS user
and every server command goes through `runuser`. The cluster superuser logs in over the Unix socket
(peer authentication); every TCP login needs a password (scram-sha-256).
"""
from __future__ import annotations

import getpass
import os
import shutil
import stat
import subprocess
from pathlib import Path

from infrastructure.local import processes
from infrastructure.settings import REPO_ROOT, Settings, is_loopback

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
INIT_SQL_DIR = REPO_ROOT / "gold" / "postgres" / "init"
AS_ROOT = os.geteuid() == 0
OS_USER = "postgres" if AS_ROOT else getpass.getuser()

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "150",
    "shared_buffers": "128MB",
    "password_encryption": "scram-sha-256",
    "log_min_messages": "warning",
    "timezone": "UTC",
}


def server_settings(settings: Settings) -> dict[str, str]:
    """SERVER_SETTINGS, also listening on POSTGRES_HOST when that is an address of this machine other
    than loopback (docker mode's end-to-end test serves containers on a Docker bridge address)."""
    if is_loopback(settings.postgres_host):
        return SERVER_SETTINGS
    return {**SERVER_SETTINGS, "listen_addresses": f"'127.0.0.1,{settings.postgres_host}'"}


def _allow_same_subnets(data: Path) -> None:
    """Password logins from the subnets of the server's own addresses (a bridge's containers)."""
    hba = data / "pg_hba.conf"
    line = "host all all samenet scram-sha-256\n"
    if line not in hba.read_text():
        with hba.open("a") as out:  # appending keeps the file's owner (postgres)
            out.write(line)


def home(settings: Settings) -> Path:
    return settings.run_dir / "postgres"


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *argv] if AS_ROOT else argv


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(_as_owner(argv), check=True, capture_output=True, text=True, **kwargs)


def _data_dir(settings: Settings) -> Path:
    return home(settings) / "data"


def _let_owner_traverse(folder: Path) -> None:
    """The server runs as `postgres`: every folder above its data must be searchable by others
    (a checkout inside a 0700 folder such as one from `mktemp -d` is not). Adds o+x only, never read."""
    for parent in [folder, *folder.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _prepare(settings: Settings) -> None:
    if not (PG_BIN / "initdb").exists():
        raise processes.StartError(f"PostgreSQL 15 not found in {PG_BIN}: run `make setup` "
                                   "(as root it installs postgresql-15; otherwise: apt-get install postgresql-15)")
    root = home(settings)
    if AS_ROOT:
        shutil.chown(root, OS_USER, OS_USER)
        _let_owner_traverse(root.parent)
    data = _data_dir(settings)
    if not (data / "PG_VERSION").exists():
        _run([str(PG_BIN / "initdb"), "-D", str(data), "-U", OS_USER, "-E", "UTF8", "--no-locale",
              "--auth-local=peer", "--auth-host=scram-sha-256"])
    if server_settings(settings) is not SERVER_SETTINGS:
        _allow_same_subnets(data)


def _launch(settings: Settings) -> None:
    options = " ".join(f"-c {k}={v}" for k, v in server_settings(settings).items())
    _run([str(PG_BIN / "pg_ctl"), "-D", str(_data_dir(settings)), "-l", str(home(settings) / "server.log"),
          "-w", "-t", "60", "-o", f"-p {settings.postgres_port} -k {home(settings)} {options}", "start"])


def _halt(settings: Settings) -> None:
    _run([str(PG_BIN / "pg_ctl"), "-D", str(_data_dir(settings)), "-m", "fast", "-w", "stop"])


def service(settings: Settings) -> processes.Service:
    """Run through pg_ctl, which daemonizes the server and waits for it; stopped by pg_ctl's fast shutdown,
    since SIGTERM (a smart shutdown) would wait for every client to leave."""
    return processes.Service("postgresql", home(settings), (), probe=lambda: healthy(settings), expect="postgres",
                             address=("127.0.0.1", settings.postgres_port), pid_name="data/postmaster.pid",
                             prepare=lambda: _prepare(settings), launch=lambda: _launch(settings),
                             halt=lambda: _halt(settings))


def healthy(settings: Settings) -> bool:
    result = subprocess.run(_as_owner([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1",
                                       "-p", str(settings.postgres_port), "-q"]), capture_output=True)
    return result.returncode == 0


def _psql_variables(settings: Settings) -> dict[str, str]:
    return {
        "loader": settings.postgres_user, "loader_password": settings.postgres_password,
        "reader": settings.postgres_ro_user, "reader_password": settings.postgres_ro_password,
        "reader_statement_timeout": f"{settings.postgres_ro_statement_timeout_seconds}s",
        "gold_db": settings.postgres_db,
        "airflow_user": settings.airflow_db_user, "airflow_password": settings.airflow_db_password,
        "airflow_db": settings.airflow_db,
    }


def apply_init_sql(settings: Settings) -> list[str]:
    """Run gold/postgres/init/*.sql in name order as the cluster superuser; 00_* in `postgres`.

    Variables (passwords included) reach psql on stdin, never on a command line.
    """
    applied = []
    for sql_file in sorted(INIT_SQL_DIR.glob("*.sql")):
        database = "postgres" if sql_file.name.startswith("00_") else settings.postgres_db
        preamble = "".join(f"\\set {k} '{v.replace(chr(39), chr(39) * 2)}'\n"
                           for k, v in _psql_variables(settings).items())
        script = preamble + sql_file.read_text(encoding="utf-8")
        result = subprocess.run(
            _as_owner([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(home(settings)),
                       "-p", str(settings.postgres_port), "-U", OS_USER, "-d", database, "-f", "-"]),
            input=script, capture_output=True, text=True)
        if result.returncode != 0:
            raise processes.StartError(f"init SQL {sql_file.name} failed on PostgreSQL "
                                       f"127.0.0.1:{settings.postgres_port}: {result.stderr.strip()}")
        applied.append(sql_file.name)
    return applied
