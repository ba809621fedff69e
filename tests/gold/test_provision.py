"""Provisioning guards that need no Superset: a foreign server on the port is never mistaken for ours, and the
Gold database is registered for the charts only (SQL Lab when the operator opts in, never writes)."""
from __future__ import annotations

import io
import zipfile

import pytest
import yaml

from gold.superset.provision import DATABASE_FILE, build_bundle, normalised, read_assets, service
from infrastructure.settings import load

pytestmark = pytest.mark.unit
NEVER_ALLOWED = ("allow_dml", "allow_ctas", "allow_cvas", "allow_file_upload", "allow_run_async")


def test_the_server_is_ours_only_by_its_pid_file_and_command_line_and_its_port_is_guarded(tmp_path):
    settings = load({"ENV_FILE": str(tmp_path / "none"), "RUN_DIR": str(tmp_path), "SUPERSET_PORT": "18088"})
    server = service(settings)
    assert server.address == ("127.0.0.1", 18088)  # Service.start refuses it while another process holds it
    server.pid_file.parent.mkdir(parents=True)
    server.pid_file.write_text("1")  # init, alive but not gunicorn
    assert server.pid() is None


def imported_database(tmp_path, assets, **environ) -> dict:
    """The Gold database as the bundle provisioning POSTs registers it."""
    settings = load({"ENV_FILE": str(tmp_path / "none"), **environ})
    bundle = zipfile.ZipFile(io.BytesIO(build_bundle(settings, assets)))
    return yaml.safe_load(bundle.read(f"tripclick_assets/{DATABASE_FILE}"))


def test_sql_lab_is_off_by_default_and_nothing_but_reading_is_ever_allowed(tmp_path):
    assets = read_assets()
    assets[DATABASE_FILE] = {**assets[DATABASE_FILE], **dict.fromkeys(NEVER_ALLOWED, True),
                             "expose_in_sqllab": True}  # an asset edited by hand does not open anything
    database = imported_database(tmp_path, assets)
    assert database["expose_in_sqllab"] is False
    assert {key: database[key] for key in NEVER_ALLOWED} == dict.fromkeys(NEVER_ALLOWED, False)


def test_an_operator_opts_in_to_sql_lab_and_still_only_reads(tmp_path):
    database = imported_database(tmp_path, read_assets(), SUPERSET_SQLLAB_ENABLED="1")
    assert database["expose_in_sqllab"] is True
    assert {key: database[key] for key in NEVER_ALLOWED} == dict.fromkeys(NEVER_ALLOWED, False)


def test_an_export_with_sql_lab_on_commits_the_default():
    exported = {**read_assets()[DATABASE_FILE], "expose_in_sqllab": True}
    assert normalised(DATABASE_FILE, exported)[1]["expose_in_sqllab"] is False
