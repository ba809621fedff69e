"""The committed Superset assets (three dashboards) are complete, consistent and free of secrets (pure, no
Superset)."""
from __future__ import annotations

import io
import json
import runpy
import zipfile

import pytest
import yaml

from gold import marts
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


LIVE_DATASETS = ["clicks_per_minute_newest", "top_clinical_areas_15m", "top_documents_15m"]


def dashboard(assets, title):
    (found,) = [d for d in of_kind(assets, "dashboards").values() if d["dashboard_title"] == title]
    return found


def gold_charts(assets):
    """The charts of the dated tables of schema gold (marts, dq_results, pipeline_runs): every one follows its
    dashboard's date filter. The freshness charts (one-row virtual dataset, no date) show the newest date of all."""
    gold = {d["uuid"] for d in of_kind(assets, "datasets").values()
            if d["schema"] == "gold" and any(c["column_name"] == "event_date" for c in d["columns"])}
    return [c for c in of_kind(assets, "charts").values() if c["dataset_uuid"] in gold]


def chart_metrics(chart) -> list[str]:
    """The saved metrics a chart uses (none for a table in raw mode)."""
    params = chart["params"]
    return params.get("metrics") or ([params["metric"]] if "metric" in params else [])


def placed_charts(board) -> set[str]:
    return {item["meta"]["uuid"] for item in board["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"}


def test_one_database_twelve_datasets_twenty_one_charts_three_dashboards(assets):
    assert len(of_kind(assets, "databases")) == 1
    assert sorted((d["schema"], d["table_name"]) for d in of_kind(assets, "datasets").values()) == [
        ("gold", "dq_results"), ("gold", "gold_freshness"), ("gold", "mart_clinical_areas"),
        ("gold", "mart_daily_traffic"), ("gold", "mart_popular_documents"), ("gold", "mart_search_keywords"),
        ("gold", "mart_search_terms"), ("gold", "mart_session_analysis"), ("gold", "pipeline_runs"),
        *(("live", name) for name in LIVE_DATASETS)]
    assert len(of_kind(assets, "charts")) == 21
    assert sorted(d["dashboard_title"] for d in of_kind(assets, "dashboards").values()) == [
        "TripClick Clinical Search", "TripClick Live", "TripClick Pipeline health"]


def test_mart_datasets_describe_the_defined_marts(assets):
    # Superset's own computed columns (an expression) aside, a mart dataset is its gold/marts.py definition.
    datasets = {d["table_name"]: d for d in of_kind(assets, "datasets").values() if d["schema"] == marts.SCHEMA}
    for mart in marts.MARTS:
        dataset = datasets[mart.name]
        assert dataset["description"] == mart.description, mart.name
        physical = {c["column_name"]: (c["type"], c["description"]) for c in dataset["columns"] if not c["expression"]}
        assert physical == {c.name: (c.type.upper(), c.description) for c in mart.columns}, mart.name


def test_references_resolve(assets):
    database_uuid = assets[DATABASE_FILE]["uuid"]
    datasets = {d["uuid"]: d for d in of_kind(assets, "datasets").values()}
    assert all(d["database_uuid"] == database_uuid and d["schema"] in ("gold", "live") for d in datasets.values())
    charts = of_kind(assets, "charts").values()
    for chart in charts:
        dataset = datasets[chart["dataset_uuid"]]
        metric_names = {m["metric_name"] for m in dataset["metrics"]}
        used = chart_metrics(chart)
        assert used or chart["params"]["query_mode"] == "raw", chart["slice_name"]
        assert set(used) <= metric_names, chart["slice_name"]
        columns = {c["column_name"] for c in dataset["columns"]}
        named = [*chart["params"].get("groupby", []), *chart["params"].get("all_columns", []),
                 *chart["params"].get("groupbyRows", []), *chart["params"].get("groupbyColumns", [])]
        assert set(named) <= columns, chart["slice_name"]
    placed = [uuid for board in of_kind(assets, "dashboards").values() for uuid in placed_charts(board)]
    assert sorted(placed) == sorted(c["uuid"] for c in charts)  # every chart on exactly one dashboard
    live_uuids = {d["uuid"] for d in datasets.values() if d["schema"] == "live"}
    on_live = placed_charts(dashboard(assets, "TripClick Live"))
    assert on_live == {c["uuid"] for c in charts if c["dataset_uuid"] in live_uuids}  # live and exact never mixed


def test_every_chart_has_a_query_context(assets):
    for chart in of_kind(assets, "charts").values():
        context = json.loads(chart["query_context"])
        (query,) = context["queries"]
        assert query.get("metrics", []) == chart_metrics(chart), chart["slice_name"]
        assert context["form_data"] == chart["params"], chart["slice_name"]


def test_every_daily_chart_follows_the_date_filter(assets):
    for chart in gold_charts(assets):
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
                       "Top search terms": ["term"], "Live top documents (last 15 min)": ["document_id"],
                       "Data quality failures by date": []}  # raw rows, one per failed expectation
    for dataset in of_kind(assets, "datasets").values():
        for m in dataset["metrics"]:  # a sum of daily distinct counts is not a distinct count over the range
            if m["expression"] in ("SUM(unique_sessions)", "SUM(sessions)") and dataset["table_name"] != \
                    "mart_daily_traffic":
                assert m["verbose_name"] == "Session-days", (dataset["table_name"], m["metric_name"])


def test_the_date_range_filter_covers_the_whole_dashboard(assets):
    for title in ("TripClick Clinical Search", "TripClick Pipeline health"):
        (native_filter,) = dashboard(assets, title)["metadata"]["native_filter_configuration"]
        assert native_filter["id"] == "NATIVE_FILTER-date-range"  # the id `make screenshots RANGE=` sets
        assert native_filter["filterType"] == "filter_time"
        assert native_filter["scope"] == {"rootPath": ["ROOT_ID"], "excluded": []}


def test_pipeline_health_shows_the_steps_the_quality_failures_and_the_newest_gold_date(assets):
    health = dashboard(assets, "TripClick Pipeline health")
    assert health["slug"] == "tripclick-pipeline-health"
    datasets = {d["uuid"]: d for d in of_kind(assets, "datasets").values()}
    charts = {c["uuid"]: c for c in of_kind(assets, "charts").values()}
    on_health = {charts[uuid]["slice_name"]: datasets[charts[uuid]["dataset_uuid"]]["table_name"]
                 for uuid in placed_charts(health)}
    assert on_health == {"Step outcomes by date": "pipeline_runs", "Rows per step and date": "pipeline_runs",
                         "Step duration (s)": "pipeline_runs", "Data quality failures by date": "dq_results",
                         "Newest Gold date": "gold_freshness", "Hours since the newest Gold date": "gold_freshness"}
    (failures,) = [c for c in charts.values() if c["slice_name"] == "Data quality failures by date"]
    assert {"clause": "WHERE", "sqlExpression": "NOT success", "expressionType": "SQL"} in \
        failures["params"]["adhoc_filters"]
    (freshness,) = [d for d in datasets.values() if d["table_name"] == "gold_freshness"]
    assert "FROM gold.mart_daily_traffic" in freshness["sql"] and freshness["main_dttm_col"] is None
    (runs,) = [d for d in datasets.values() if d["table_name"] == "pipeline_runs"]
    assert sorted(c["column_name"] for c in runs["columns"]) == sorted(
        ["step", "event_date", "success", "rows", "seconds", "finished_at"])  # 40_pipeline_runs.sql


def test_the_live_dashboard_refreshes_every_10_s_and_says_it_is_provisional(assets):
    live = dashboard(assets, "TripClick Live")
    assert live["slug"] == "tripclick-live"
    assert 0 < live["metadata"]["refresh_frequency"] <= 10
    assert live["metadata"]["native_filter_configuration"] == []  # the views pick the newest live date
    notes = [item["meta"]["code"] for item in live["position"].values()
             if isinstance(item, dict) and item.get("type") == "MARKDOWN"]
    assert len(notes) == 1 and "Provisional" in notes[0] and "TripClick Clinical Search" in notes[0]
    titles = {c["slice_name"] for c in of_kind(assets, "charts").values()}
    assert {"Live clicks per minute", "Live top documents (last 15 min)",
            "Live top clinical areas (last 15 min)"} <= titles


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
           **{k: f"explicit-{k.lower()}-of-at-least-32-characters" for k in LOCAL_ONLY_DEFAULTS},
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
    assert config["SECRET_KEY"] == "explicit-superset_secret_key-of-at-least-32-characters"
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://s:p@db/superset"


def test_config_uses_sqlite_under_run_dir_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("ENV_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("RUN_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("PLATFORM_MODE", raising=False)
    monkeypatch.delenv("SUPERSET_DATABASE_URI", raising=False)
    config = runpy.run_path(str(CONFIG_FILE))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'run' / 'superset' / 'superset.db'}"
