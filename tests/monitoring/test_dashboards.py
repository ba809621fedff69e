"""The Grafana dashboards as code: committed JSON = the builder's, every query parses and reads known metrics."""
from __future__ import annotations

import promql_parser
import pytest
import yaml

from monitoring import dashboards
from monitoring.metrics import CATALOGUE, EXTERNAL_METRICS

pytestmark = pytest.mark.unit
PROVISIONING = dashboards.DASHBOARDS_DIR.parent / "provisioning"
EXPORTER_PREFIXES = ("pg_", "node_", "jvm_", "airflow_", "kafka_")


@pytest.fixture(scope="module")
def boards() -> list[dict]:
    return dashboards.build()


def selected_metrics(expr: str) -> list[str]:
    """The metric name of every vector selector in `expr` (None for a selector without one)."""
    names: list[str | None] = []

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            by_matcher = [m.value for m in node.matchers.matchers
                          if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal]
            names.append(node.name or (by_matcher[0] if by_matcher else None))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def known_metric(name: str | None) -> bool:
    return bool(name) and (name in CATALOGUE or name in EXTERNAL_METRICS or name == "up"
                           or name.startswith(EXPORTER_PREFIXES))


def test_the_committed_json_is_what_the_builder_writes(boards):
    committed = {path.name: path.read_text(encoding="utf-8") for path in dashboards.DASHBOARDS_DIR.glob("*.json")}
    assert committed == {f"{board['uid']}.json": dashboards.render(board) for board in boards}, \
        "run `python -m monitoring.dashboards` and commit the result"


def test_four_dashboards_with_unique_uids_over_the_last_day(boards):
    assert [board["title"] for board in boards] == ["TripClick / Kafka", "TripClick / Pipeline day",
                                                    "TripClick / Spark streaming",
                                                    "TripClick / PostgreSQL and Gold freshness"]
    uids = [board["uid"] for board in boards]
    assert len(set(uids)) == len(uids) and all(len(uid) <= 40 for uid in uids)  # Grafana's uid limit
    for board in boards:
        assert (board["schemaVersion"], board["time"]) == (39, {"from": "now-24h", "to": "now"})


def test_every_panel_is_described_and_has_targets(boards):
    for board in boards:
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids), board["title"]
        for panel in board["panels"]:
            where = f"{board['title']} / {panel.get('title')}"
            assert panel["type"] in ("stat", "timeseries"), where
            assert panel["title"] and panel["description"] and panel["fieldConfig"]["defaults"]["unit"], where
            assert panel["targets"] and all(target["expr"] for target in panel["targets"]), where
            assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), where


def test_panels_in_one_row_do_not_overlap(boards):
    for board in boards:
        cells = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= dashboards.GRID_WIDTH, panel["title"]
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & mine, f"{board['title']} / {panel['title']} overlaps another panel"
            cells |= mine


def test_panel_queries_list_every_target(boards):
    queries = dashboards.panel_queries()
    assert len(queries) == sum(len(panel["targets"]) for board in boards for panel in board["panels"])
    assert {title for title, _, _ in queries} == {board["title"] for board in boards}


@pytest.mark.parametrize("dashboard, panel, expr", dashboards.panel_queries())
def test_every_query_parses_and_selects_only_known_metrics(dashboard, panel, expr):
    names = selected_metrics(expr)
    assert names, f"{dashboard} / {panel}: selects no metric"
    assert all(known_metric(name) for name in names), f"{dashboard} / {panel}: unknown metric in {names}"


def test_the_metric_check_catches_an_unknown_or_nameless_selector():
    assert selected_metrics('sum by (t) (rate(x_total{a="b"}[5m])) / on() {__name__="y"}') == ["x_total", "y"]
    assert not known_metric(selected_metrics("rate(tripclick_job_rowz[5m])")[0])
    assert not known_metric(selected_metrics('{job="kafka-broker"}')[0])
    assert known_metric("up") and known_metric("tripclick_job_rows") and known_metric("pg_stat_database_xact_commit")


def test_every_panel_uses_the_provisioned_datasource(boards):
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert (source["type"], source["uid"]) == (dashboards.DATASOURCE["type"], dashboards.DATASOURCE["uid"])
    assert source["url"] == "http://prometheus:9090"  # the compose service
    for board in boards:
        for panel in board["panels"]:
            assert panel["datasource"] == dashboards.DATASOURCE
            assert all(target["datasource"] == dashboards.DATASOURCE for target in panel["targets"])


def test_grafana_reads_the_folder_the_compose_file_mounts_the_dashboards_at():
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "tripclick.yaml").read_text())["providers"]
    compose = yaml.safe_load((dashboards.DASHBOARDS_DIR.parents[1] / "docker-compose.yaml").read_text())
    assert provider["type"] == "file"
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose["services"]["grafana"]["volumes"]
