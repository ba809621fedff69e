"""The committed Superset assets are complete, consistent and free of secrets (pure, no Superset)."""
from __future__ import annotations

import io
import json
import runpy
import zipfile

import pytest
import yaml

from gold.superset.provision import (ASSETS_DIR, DATABASE_FILE, MASKED_PASSWORD, build_bundle, database_uri,
                                     normalised, read_assets)
from infrastructure.settings import LOCAL_ONLY_DEFAULTS, ConfigError, load

pytestmark = pytest.mark.unit
CONFIG_FILE = ASSETS_DIR.parent / "superset_config.py"


@pytest.fixture(scope="module")
def assets():
    return read_assets()


def of_kind(assets, kind):
    return {name: content for name, content in assets.items() if name.startswith(f"{kind}/")}


def test_one_database_six_mart_datasets_and_dq_results_twelve_charts_one_dashboard(assets):
    assert len(of_kind(assets, "databases")) == 1
    assert sorted(d["table_name"] for d in of_kind(assets, "datasets").values()) == [
        "dq_results", "mart_clinical_areas", "mart_daily_traffic", "mart_popular_documents", "mart_search_keywords",
        "mart_search_terms", "mart_session_analysis"]
    assert len(of_kind(assets, "charts")) == 12
    assert [d["dashboard_title"] for d in of_kind(assets, "dashboards").values()] == ["TripClick Clinical Search"]


def test_references_resolve(assets):
    database_uuid = assets[DATABASE_FILE]["uuid"]
    datasets = {d["uuid"]: d for d in of_kind(assets, "datasets").values()}
    assert all(d["database_uuid"] == database_uuid and d["schema"] == "gold" for d in datasets.values())
    charts = of_kind(assets, "charts").values()
    for chart in charts:
        dataset = datasets[chart["dataset_uuid"]]
        metric_names = {m["metric_name"] for m in dataset["metrics"]}
        used = chart["params"].get("metrics") or [chart["params"]["metric"]]
        assert set(used) <= metric_names, chart["slice_name"]
    (dashboard,) = of_kind(assets, "dashboards").values()
    placed = {item["meta"]["uuid"] for item in dashboard["position"].values()
              if isinstance(item, dict) and item.get("type") == "CHART"}
    assert placed == {c["uuid"] for c in charts}


def test_every_chart_has_a_query_context_and_follows_the_date_filter(assets):
    for chart in of_kind(assets, "charts").values():
        context = json.loads(chart["query_context"])
        (query,) = context["queries"]
        assert {"col": "event_date", "op": "TEMPORAL_RANGE", "val": "No filter"} in query["filters"]
        assert any(f["operator"] == "TEMPORAL_RANGE" and f["subject"] == "event_date"
                   for f in chart["params"]["adhoc_filters"]), chart["slice_name"]


def test_tables_group_by_stable_keys_and_label_summed_daily_distincts(assets):
    # A title or a display name may differ between dates; ids and normalised strings do not.
    groupby = {c["slice_name"]: c["params"].get("groupby") for c in of_kind(assets, "charts").values()
               if c["viz_type"] == "table"}
    assert groupby == {"Top documents": ["document_id"], "Top search queries": ["query"],
                       "Top search terms": ["term"]}
    for dataset in of_kind(assets, "datasets").values():
        for m in dataset["metrics"]:  # a sum of daily distinct counts is not a distinct count over the range
            if m["expression"] in ("SUM(unique_sessions)", "SUM(sessions)") and dataset["table_name"] != \
                    "mart_daily_traffic":
                assert m["verbose_name"] == "Session-days", (dataset["table_name"], m["metric_name"])


def test_the_date_range_filter_covers_the_whole_dashboard(assets):
    (dashboard,) = of_kind(assets, "dashboards").values()
    (native_filter,) = dashboard["metadata"]["native_filter_configuration"]
    assert native_filter["filterType"] == "filter_time"
    assert native_filter["scope"] == {"rootPath": ["ROOT_ID"], "excluded": []}


def test_no_password_is_committed(assets):
    uri = assets[DATABASE_FILE]["sqlalchemy_uri"]
    assert f":{MASKED_PASSWORD}@" in uri and "superset_ro" in uri
    text = "".join(p.read_text() for p in ASSETS_DIR.rglob("*.yaml"))
    for name in ("POSTGRES_PASSWORD", "POSTGRES_RO_PASSWORD", "AIRFLOW_DB_PASSWORD", "SUPERSET_SECRET_KEY",
                 "AWS_SECRET_ACCESS_KEY"):
        assert LOCAL_ONLY_DEFAULTS[name] not in text, name


def test_bundle_takes_the_database_address_from_settings(assets, tmp_path):
    settings = load({"ENV_FILE": str(tmp_path / "none"), "POSTGRES_HOST": "gold-db", "POSTGRES_PORT": "6000",
                     "POSTGRES_RO_USER": "reader_x"})
    bundle = zipfile.ZipFile(io.BytesIO(build_bundle(settings, assets)))
    database = yaml.safe_load(bundle.read(f"tripclick_assets/{DATABASE_FILE}"))
    assert database["sqlalchemy_uri"] == database_uri(settings)
    assert database["sqlalchemy_uri"] == f"postgresql+psycopg2://reader_x:{MASKED_PASSWORD}@gold-db:6000/tripclick_gold"
    assert len(bundle.namelist()) == len(assets)


def test_committed_assets_are_already_normalised(assets):
    # An export rewrites files through normalised(); committed files must be its fixed point.
    for name, content in assets.items():
        assert normalised(name, json.loads(json.dumps(content))) == (name, content), name


def docker_env(tmp_path, **overrides):
    env = {"ENV_FILE": str(tmp_path / "none"), "PLATFORM_MODE": "docker",
           **{k: f"explicit-{k.lower()}" for k in LOCAL_ONLY_DEFAULTS},
           # docker mode refuses loopback addresses and a lake off S3
           "KAFKA_BROKERS": "kafka.internal:9092", "POSTGRES_HOST": "gold-db.internal",
           "S3_ENDPOINT": "http://s3.internal:9000", "LAKE_ROOT": "s3a://tripclick-lake/",
           "SUPERSET_DATABASE_URI": "postgresql+psycopg2://s:p@db/superset"}
    return {**env, **overrides}


def test_config_refuses_the_local_secret_key_outside_local_mode(tmp_path, monkeypatch):
    for key, value in docker_env(tmp_path, SUPERSET_SECRET_KEY=LOCAL_ONLY_DEFAULTS["SUPERSET_SECRET_KEY"]).items():
        monkeypatch.setenv(key, value)
    # settings.load() refuses it first (ConfigError); the config's own check stays as a second guard
    with pytest.raises((RuntimeError, ConfigError), match="SUPERSET_SECRET_KEY"):
        runpy.run_path(str(CONFIG_FILE))


def test_config_needs_a_metadata_database_outside_local_mode(tmp_path, monkeypatch):
    for key, value in docker_env(tmp_path, SUPERSET_DATABASE_URI="").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(RuntimeError, match="SUPERSET_DATABASE_URI"):
        runpy.run_path(str(CONFIG_FILE))


def test_config_reads_settings(tmp_path, monkeypatch):
    for key, value in docker_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    config = runpy.run_path(str(CONFIG_FILE))
    assert config["SECRET_KEY"] == "explicit-superset_secret_key"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://s:p@db/superset"


def test_config_uses_sqlite_under_run_dir_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("PLATFORM_MODE", raising=False)
    monkeypatch.delenv("SUPERSET_DATABASE_URI", raising=False)
    config = runpy.run_path(str(CONFIG_FILE))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'run' / 'superset' / 'superset.db'}"
