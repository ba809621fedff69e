"""Provision Superset from the committed assets, and run it on 127.0.0.1:SUPERSET_PORT.

    .venv/bin/python -m gold.superset.provision up      # docker mode's superset-init (locally: make superset)
    .venv/bin/python -m gold.superset.provision export [--into DIR]  # running dashboards -> assets/

Locally, the `superset` group of `infrastructure.local.services` (`make superset` = `make up GROUP=superset`).
`up` upgrades the metadata DB, runs `superset init`, starts gunicorn unless it is already running,
waits for /health, creates the admin (or resets its password) when its login fails, imports every
YAML asset under gold/superset/assets/ (the `tripclick_gold` database as the read-only role, its
password injected here from settings) and restores each chart's saved query context, which
Superset's importer drops on purpose.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import psycopg2
import requests
import yaml

from gold.database import connect_reader
from gold.superset.api import SupersetClient, SupersetError
from infrastructure.local import processes
from infrastructure.local.services import Group
from infrastructure.settings import REPO_ROOT, Settings, load

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
CONFIG_FILE = Path(__file__).resolve().parent / "superset_config.py"
SUPERSET_BIN = REPO_ROOT / ".venvs" / "superset" / "bin"
DATABASE_FILE = "databases/tripclick_gold.yaml"
DASHBOARD_SLUG = "tripclick-clinical-search"
LIVE_DASHBOARD_SLUG = "tripclick-live"  # the provisional live marts (schema live), auto-refreshing
HEALTH_DASHBOARD_SLUG = "tripclick-pipeline-health"  # gold.pipeline_runs, gold.dq_results, the newest Gold date
DASHBOARD_SLUGS = (DASHBOARD_SLUG, LIVE_DASHBOARD_SLUG, HEALTH_DASHBOARD_SLUG)
MASKED_PASSWORD = "XXXXXXXXXX"  # what Superset writes in exports instead of a password
HEALTH_TIMEOUT_SEC = 180


def log(message: str) -> None:
    print(f"[superset] {message}", flush=True)


def home(settings: Settings) -> Path:
    return settings.run_dir / "superset"


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.superset_port}"


def superset_env() -> dict[str, str]:
    return {**os.environ, "FLASK_APP": "superset", "SUPERSET_CONFIG_PATH": str(CONFIG_FILE),
            "PYTHONUNBUFFERED": "1"}


def run_superset(args: list[str], stdin: str | None = None) -> str:
    """Run one `superset` CLI command; raise with its output when it fails. Returns stdout+stderr."""
    started = time.monotonic()
    result = subprocess.run([str(SUPERSET_BIN / "superset"), *args], input=stdin, capture_output=True,
                            text=True, env=superset_env(), cwd=REPO_ROOT)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SupersetError(f"`superset {' '.join(args)}` exited {result.returncode}:\n{output[-3000:]}")
    log(f"superset {' '.join(args[:2])} ok ({time.monotonic() - started:.1f}s)")
    return output


def ensure_admin(settings: Settings) -> None:
    """Create the admin, or reset its password to the configured one (the password goes via stdin)."""
    user, password = settings.superset_admin_user, settings.superset_admin_password
    typed = f"{password}\n{password}\n"
    output = run_superset(["fab", "create-admin", "--username", user, "--firstname", "TripClick",
                           "--lastname", "Admin", "--email", f"{user}@localhost"], stdin=typed)
    if "already exists" in output:
        run_superset(["fab", "reset-password", "--username", user], stdin=typed)


def healthy(settings: Settings) -> bool:
    try:
        return requests.get(f"{base_url(settings)}/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def service(settings: Settings) -> processes.Service:
    """gunicorn serving Superset's app; its master's PID file is the one we write."""
    argv = [str(SUPERSET_BIN / "gunicorn"), "--bind", f"127.0.0.1:{settings.superset_port}",
            "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--timeout", "120",
            "--limit-request-line", "0", "--limit-request-field_size", "0", "superset.app:create_app()"]
    return processes.Service("superset", home(settings), argv, probe=lambda: healthy(settings), expect="gunicorn",
                             address=("127.0.0.1", settings.superset_port), pid_name="gunicorn.pid",
                             log_name="gunicorn.log", timeout=HEALTH_TIMEOUT_SEC, env=superset_env, cwd=REPO_ROOT,
                             prepare=prepare_metadata)


def prepare_metadata() -> None:
    """Before gunicorn starts (a running server's metadata database was prepared when it started): schema
    migrations, then roles and permissions."""
    run_superset(["db", "upgrade"])
    run_superset(["init"])


def check_gold_database(settings: Settings) -> None:
    """Fail early, with the reason, when the dashboard's database or its read-only login is not usable."""
    try:
        connect_reader(settings, "superset provisioning").close()
    except psycopg2.Error as exc:
        raise SupersetError(f"cannot reach the Gold database as {settings.postgres_ro_user}@{settings.postgres_host}:"
                            f"{settings.postgres_port}/{settings.postgres_db} (run `make up`?): "
                            f"{str(exc).strip()}") from None


def database_uri(settings: Settings) -> str:
    """The Gold database as the read-only role, password masked (it travels separately)."""
    return (f"postgresql+psycopg2://{settings.postgres_ro_user}:{MASKED_PASSWORD}@"
            f"{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_db}")


def database_access(sqllab: bool) -> dict[str, bool]:
    """What Superset lets its users do with the Gold database: the charts' queries, and SQL Lab (their own
    SELECTs) only when SUPERSET_SQLLAB_ENABLED; never writes, CREATE TABLE AS/VIEW AS, uploads or async runs.
    Fields of Superset 3.1's database import; they override the committed asset's."""
    return {"expose_in_sqllab": sqllab, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
            "allow_dml": False, "allow_file_upload": False}


def read_assets() -> dict[str, Any]:
    """Every committed YAML asset, keyed by its path under assets/."""
    assets = {path.relative_to(ASSETS_DIR).as_posix(): yaml.safe_load(path.read_text(encoding="utf-8"))
              for path in sorted(ASSETS_DIR.rglob("*.yaml"))}
    if DATABASE_FILE not in assets or "metadata.yaml" not in assets:
        raise SupersetError(f"{ASSETS_DIR} must hold metadata.yaml and {DATABASE_FILE}")
    return assets


def build_bundle(settings: Settings, assets: dict[str, Any]) -> bytes:
    """ZIP of the assets with the database URI (never a password) and access taken from settings."""
    database = {**assets[DATABASE_FILE], "sqlalchemy_uri": database_uri(settings),
                **database_access(settings.superset_sqllab_enabled)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in {**assets, DATABASE_FILE: database}.items():
            bundle.writestr(f"tripclick_assets/{name}", yaml.safe_dump(content, sort_keys=False))
    return buffer.getvalue()


def restore_query_contexts(client: SupersetClient, assets: dict[str, Any]) -> int:
    """Put each chart's committed query context back, pointed at its imported dataset."""
    committed = {c["slice_name"]: c for name, c in assets.items() if name.startswith("charts/")}
    restored = 0
    for chart in (c for slug in DASHBOARD_SLUGS for c in client.dashboard_charts(slug)):
        asset = committed.get(chart["slice_name"])
        if not asset or not asset.get("query_context"):
            continue
        dataset_id = int(str(chart["form_data"]["datasource"]).split("__")[0])
        context = json.loads(asset["query_context"])
        context["datasource"] = {"id": dataset_id, "type": "table"}
        context["form_data"] = {**asset["params"], "datasource": f"{dataset_id}__table",
                                "slice_id": chart["id"]}
        client.put(f"/api/v1/chart/{chart['id']}", {"query_context": json.dumps(context)})
        restored += 1
    return restored


def client_for(settings: Settings) -> SupersetClient:
    return SupersetClient(base_url(settings), settings.superset_admin_user, settings.superset_admin_password)


def admin_client(settings: Settings) -> SupersetClient:
    """Log in as the admin; create it (or reset its password) first when the login is refused."""
    try:
        return client_for(settings)
    except SupersetError:
        ensure_admin(settings)
        return client_for(settings)


def up(settings: Settings) -> dict[str, int]:
    """Idempotent: a running server is kept, the assets imported again over what it holds."""
    started = time.monotonic()
    home(settings).mkdir(parents=True, exist_ok=True)
    assets = read_assets()
    check_gold_database(settings)
    server = service(settings)
    log(f"gunicorn running (pid {server.start()}, log {server.log_file})")
    processes.wait_healthy([server])
    client = admin_client(settings)
    before = client.counts()
    client.import_assets(build_bundle(settings, assets), {DATABASE_FILE: settings.postgres_ro_password})
    restored = restore_query_contexts(client, assets)
    after = client.counts()
    log(f"imported {len(assets) - 1} asset files; query contexts restored for {restored} charts")
    summary = " ".join(f"{kind}={after[kind]}(+{after[kind] - before[kind]})" for kind in after)
    log(f"ready in {time.monotonic() - started:.0f}s: {summary}; "
        "dashboards " + " ".join(f"{base_url(settings)}/superset/dashboard/{slug}/" for slug in DASHBOARD_SLUGS))
    return after


def file_stem(title: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in title)


def normalised(name: str, content: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An exported file without instance-specific ids or ordering, so a round trip leaves no diff."""
    if name == "metadata.yaml":
        content["type"] = "assets"  # the bundle is imported through /api/v1/assets/import/
    elif name == DATABASE_FILE:
        content.update(database_access(sqllab=False))  # provisioning sets it from settings; an opt-in stays local
    elif name.startswith("charts/"):
        name = f"charts/{file_stem(content['slice_name'])}.yaml"
        content["params"].pop("datasource", None)
        if content.get("query_context"):
            context = json.loads(content["query_context"])
            context["datasource"] = {"id": 0, "type": "table"}  # set to the real id at import
            for key in ("datasource", "slice_id"):
                context.get("form_data", {}).pop(key, None)
            content["query_context"] = json.dumps(context)
    elif name.startswith("dashboards/"):
        name = f"dashboards/{file_stem(content['dashboard_title'])}.yaml"
        for item in content.get("position", {}).values():
            if isinstance(item, dict) and item.get("type") == "CHART":
                item["meta"]["chartId"] = 0  # the importer maps charts by uuid
    elif name.startswith("datasets/"):
        content["columns"] = sorted(content.get("columns") or [], key=lambda c: c["column_name"])
        content["metrics"] = sorted(content.get("metrics") or [], key=lambda m: m["metric_name"])
    return name, content


def export(settings: Settings, into: Path = ASSETS_DIR) -> int:
    """Replace the folder `into` (default assets/) with the export of every dashboard, normalised.

    Superset masks the database password in an export, so none can reach the repository.
    """
    client = client_for(settings)
    ids = ",".join(str(client.get(f"/api/v1/dashboard/{slug}")["result"]["id"]) for slug in DASHBOARD_SLUGS)
    archive = zipfile.ZipFile(io.BytesIO(client.get_bytes("/api/v1/dashboard/export/", q=f"!({ids})")))
    exported = dict(normalised(member.split("/", 1)[1], yaml.safe_load(archive.read(member)))
                    for member in archive.namelist())
    if DATABASE_FILE not in exported:
        raise SupersetError(f"export has no {DATABASE_FILE}: {sorted(exported)}")
    shutil.rmtree(into, ignore_errors=True)
    for name, content in exported.items():
        path = into / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    log(f"exported {len(exported)} files into {into}")
    return len(exported)


def down(settings: Settings) -> list[str]:
    return processes.stop([service(settings)])


GROUP = Group("superset", lambda s: [service(s)], up, down, needs=("platform",))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gold.superset.provision", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "export"))
    parser.add_argument("--into", type=Path, default=ASSETS_DIR,
                        help=f"export: folder to (re)write, default {ASSETS_DIR.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    settings = load()
    try:
        if args.command == "up":
            up(settings)
        else:
            export(settings, args.into.resolve())
    except (SupersetError, processes.StartError, requests.RequestException) as exc:
        log(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
