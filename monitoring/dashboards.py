"""Grafana dashboards as code: the operator's four views of the platform, over monitoring/metrics.py's metrics.

    python -m monitoring.dashboards     # writes monitoring/grafana/dashboards/<slug>.json

Plain dicts in Grafana's JSON model (schemaVersion 39), so no dashboard SDK joins the locked environments. The
written files are committed; in docker mode Grafana provisions them (monitoring/grafana/provisioning/).
Colour thresholds follow the alert defaults of infrastructure/settings.py, so a red panel means what an alert means.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from infrastructure.settings import DEFAULTS

DASHBOARDS_DIR = Path(__file__).resolve().parent / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
GRID_WIDTH = 24
GOLD_DB = DEFAULTS["POSTGRES_DB"]
DISK_FREE_RATIO = float(DEFAULTS["ALERT_DISK_FREE_RATIO"])
# The newest Gold date is a midnight, so an age above 24 h + the deadline's hour means a day's date missed its
# deadline (ALERT_DAY_DEADLINE), and above 48 h + the morning limit's hour that it missed ALERT_FRESH_BY too.
WARN_AGE_HOURS = 24 + int(DEFAULTS["ALERT_DAY_DEADLINE"].split(":")[0])
CRITICAL_AGE_HOURS = 48 + int(DEFAULTS["ALERT_FRESH_BY"].split(":")[0])


def _thresholds(steps: list[tuple[str, float | None]]) -> dict:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in steps]}


def stat(title: str, description: str, unit: str, expr: str, steps: list[tuple[str, float | None]],
         legend: str = "") -> dict:
    """A single figure coloured by `steps` ((colour, from value), the first from None)."""
    return {
        "type": "stat", "title": title, "description": description, "gridPos": {"w": 4, "h": 4},
        "fieldConfig": {"defaults": {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": _thresholds(steps)},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
                    "textMode": "auto"},
        "targets": [(expr, legend)],
    }


def timeseries(title: str, description: str, unit: str, *targets: tuple[str, str],
               steps: list[tuple[str, float | None]] | None = None) -> dict:
    """Lines over the dashboard's range; `steps`, when given, are drawn as threshold lines."""
    custom = {"fillOpacity": 10, "lineWidth": 1, "showPoints": "never", "spanNulls": False,
              "thresholdsStyle": {"mode": "line" if steps else "off"}}
    return {
        "type": "timeseries", "title": title, "description": description, "gridPos": {"w": 12, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit, "color": {"mode": "palette-classic"}, "custom": custom,
                                     "thresholds": _thresholds(steps or [("green", None)])},
                        "overrides": []},
        "options": {"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": list(targets),
    }


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def dashboard(title: str, description: str, panels: list[dict]) -> dict:
    """The dashboard around `panels`: ids, datasource, targets' refIds and a left-to-right, top-down layout in
    which a row holds panels of one height (stats above graphs, no holes for Grafana to float panels into)."""
    x = y = row_height = 0
    for number, panel in enumerate(panels, start=1):
        width, height = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + width > GRID_WIDTH or (x and height != row_height):
            x, y, row_height = 0, y + row_height, 0
        panel.update(id=number, datasource=DATASOURCE, gridPos={"x": x, "y": y, "w": width, "h": height})
        panel["targets"] = [{"refId": chr(ord("A") + index), "datasource": DATASOURCE, "expr": expr,
                             "legendFormat": legend or "__auto", "range": True}
                            for index, (expr, legend) in enumerate(panel["targets"])]
        x, row_height = x + width, max(row_height, height)
    return {
        "uid": slug(title), "title": title, "description": description, "tags": ["tripclick"],
        "schemaVersion": 39, "version": 1, "editable": False, "graphTooltip": 1, "timezone": "browser",
        "time": {"from": "now-24h", "to": "now"}, "refresh": "1m",
        "annotations": {"list": []}, "templating": {"list": []}, "links": [], "panels": panels,
    }


def _kafka() -> dict:
    topic_rate = 'sum by (topic) (rate(kafka_server_brokertopicmetrics_count{{name="{}",topic!=""}}[5m]))'
    return dashboard("TripClick / Kafka", "Is the cluster whole and is data arriving? Three brokers and three KRaft "
                     "controllers, read through their JMX agents.", [
        stat("Brokers up", "Brokers whose JMX agent answered the last scrape (3 expected). With 2, acks=all "
             "still succeeds (min ISR 2); with 1, producers fail.", "none", 'sum(up{job="kafka-broker"})',
             [("red", None), ("orange", 2), ("green", 3)]),
        stat("Controllers up", "KRaft controllers whose JMX agent answered (3 expected; the quorum needs 2).",
             "none", 'sum(up{job="kafka-controller"})', [("red", None), ("orange", 2), ("green", 3)]),
        stat("Active controllers", "Controllers that consider themselves active: exactly 1 when the quorum is "
             "healthy, 0 during an election, 2 or more never.", "none",
             'sum(kafka_controller_kafkacontroller_value{name="ActiveControllerCount"})',
             [("red", None), ("green", 1), ("red", 2)]),
        stat("Offline partitions", "Partitions without a leader as the active controller counts them (max over "
             "controllers: the standbys report 0). Any is an outage for the keys on it.", "none",
             'max(kafka_controller_kafkacontroller_value{name="OfflinePartitionsCount"})',
             [("green", None), ("red", 1)]),
        stat("Under-replicated partitions", "Partitions, summed over brokers, with a follower out of the ISR. "
             "Normal for seconds while a broker restarts; lasting means a broker is down or slow.", "none",
             'sum(kafka_server_replicamanager_value{name="UnderReplicatedPartitions"})',
             [("green", None), ("orange", 1)]),
        timeseries("Scrape status per node", "1 when the node's JMX agent answered the scrape, 0 when it did not "
                   "(a gap: the target was not scraped at all).", "none",
                   ('up{job=~"kafka-broker|kafka-controller"}', "{{job}} {{instance}}")),
        timeseries("Under-replicated partitions per broker", "Partitions this broker leads with a follower out of "
                   "the ISR: the broker that reports them is healthy, its followers are not.", "none",
                   ('kafka_server_replicamanager_value{name="UnderReplicatedPartitions"}', "{{instance}}")),
        timeseries("Messages in per topic", "Messages the partition leaders appended per second (5-minute rate), "
                   "summed over brokers. The day's replay from 15:00 is the hump; the dead-letter topic should "
                   "stay near 0.", "mps", (topic_rate.format("MessagesInPerSec"), "{{topic}}")),
        timeseries("Bytes in per topic", "Bytes the partition leaders appended per second (5-minute rate), summed "
                   "over brokers; replication traffic is not included.", "Bps",
                   (topic_rate.format("BytesInPerSec"), "{{topic}}")),
    ])


def _pipeline_day() -> dict:
    return dashboard("TripClick / Pipeline day", "What each run of the day did: the producers' replay, the batch "
                     "steps, reconcile and Airflow's runs. Producer, step and reconcile figures are pushed to the "
                     "Pushgateway at the end of each run, one group per server or step and date; a group stays "
                     "there until it is replaced by the next run of that date.", [
        stat("Failed step runs", "Batch step groups on the Pushgateway whose last run failed "
             "(tripclick_job_success 0), over all dates there. Which step and date: the panels below or Airflow.",
             "none", "sum(1 - tripclick_job_success)", [("green", None), ("red", 1)]),
        stat("Incomplete producer runs", "Producer groups whose last run did not read the whole file or lost an "
             "acknowledgement (tripclick_producer_complete 0), over all dates on the Pushgateway.", "none",
             "sum(1 - tripclick_producer_complete)", [("green", None), ("red", 1)]),
        stat("Failed reconcile checks", "Count and quality checks that failed, over all stages and dates on the "
             "Pushgateway (0: every date reconciles).", "none", "sum(tripclick_reconcile_checks_failed)",
             [("green", None), ("red", 1)]),
        timeseries("Producer lines read and events acknowledged", "Per web server and date. Read minus "
                   "acknowledged is the blank and dead-lettered lines; anything else was lost.", "short",
                   ("tripclick_producer_lines_read", "read {{server}} {{date}}"),
                   ("tripclick_producer_events_acknowledged", "acknowledged {{server}} {{date}}")),
        timeseries("Dead-lettered lines", "Lines each producer sent to the dead-letter topic because they are not "
                   "a valid event, per web server and date.", "short",
                   ("tripclick_producer_events_dead_lettered", "{{server}} {{date}}")),
        timeseries("Producer run time", "Wall time of each producer run (the replay follows the log's clock, "
                   "so it is about the day's span divided by TIME_SCALE).", "s",
                   ("tripclick_producer_duration_seconds", "{{server}} {{date}}")),
        timeseries("Rows written per step", "Rows each batch step wrote for its date: Bronze rows, Gold mart "
                   "rows, rows loaded into PostgreSQL, checks run.", "short",
                   ("tripclick_job_rows", "{{step}} {{date}}")),
        timeseries("Step run time", "Wall time of each batch step's work for its date.", "s",
                   ("tripclick_job_duration_seconds", "{{step}} {{date}}")),
        timeseries("Failed reconcile checks per date", "Failed checks summed over reconcile's stages; 0 means "
                   "Kafka, Bronze, Silver, Gold and PostgreSQL agree for the date.", "none",
                   ("sum by (date) (tripclick_reconcile_checks_failed)", "{{date}}")),
        timeseries("DAG runs finished", "DAG runs that ended, per DAG and final state, counted since the StatsD "
                   "exporter started: each step up is a run that ended.", "none",
                   ("sum by (dag_id, state) (airflow_dagrun_duration_seconds_count)", "{{dag_id}} {{state}}")),
        timeseries("Task instances finished", "Task instances that ended, per task and state, counted since the "
                   "StatsD exporter started (retries count each attempt).", "none",
                   ("sum by (task_id, state) (airflow_task_finished_total)", "{{task_id}} {{state}}")),
        timeseries("Task run time", "Mean seconds a task's execution took, per DAG and task, over the attempts "
                   "since the StatsD exporter started.", "s",
                   ("sum by (dag_id, task_id) (airflow_task_duration_seconds_sum) / sum by (dag_id, task_id) "
                    "(airflow_task_duration_seconds_count)", "{{dag_id}} {{task_id}}")),
    ])


def _streaming() -> dict:
    stall_seconds = 60 * int(DEFAULTS["ALERT_STREAM_STALL_MINUTES"])
    lag_limit = int(DEFAULTS["ALERT_STREAM_LAG_MESSAGES"])
    return dashboard("TripClick / Spark streaming", "Is the Kafka to Silver query keeping up? One series per "
                     "query, pushed after every micro-batch.", [
        stat("Streaming queries running", "Queries that are running now (a stopped query removes its figures "
             "from the Pushgateway, so 0 outside the day's streaming window is normal).", "none",
             "count(tripclick_stream_running == 1) or vector(0)", [("blue", None)]),
        stat("Seconds since last progress", "Time since each query last reported a micro-batch. Red at the "
             "default stall alert; only meaningful while the query runs.", "s",
             "time() - tripclick_stream_last_progress_timestamp_seconds",
             [("green", None), ("orange", stall_seconds / 2), ("red", stall_seconds)], "{{query}}"),
        stat("Lag behind the topic", "Messages between the last micro-batch's end offsets and the topic's end, "
             "per query. Red at the default lag alert.", "short", "tripclick_stream_lag_messages",
             [("green", None), ("red", lag_limit)], "{{query}}"),
        timeseries("Input and processed rows per second", "Rows per second arriving from Kafka and rows per "
                   "second the last micro-batch processed. Processed below input for long means the query falls "
                   "behind.", "rowsps",
                   ("tripclick_stream_input_rows_per_second", "input {{query}}"),
                   ("tripclick_stream_processed_rows_per_second", "processed {{query}}")),
        timeseries("Rows read since the query started", "Rows each query has read from Kafka, summed over its "
                   "micro-batches; flat while events arrive means the query stopped reading.", "short",
                   ("tripclick_stream_rows_total", "{{query}}")),
        timeseries("Micro-batch duration", "Wall time of the last micro-batch; batches longer than the trigger "
                   "interval make the query fall behind.", "s",
                   ("tripclick_stream_batch_duration_seconds", "{{query}}")),
        timeseries("Deduplication state rows", "Rows held in the deduplication state; it should level off as "
                   "the watermark drops old keys, not grow all day.", "short",
                   ("tripclick_stream_state_rows", "{{query}}")),
        timeseries("Lag behind the topic over time", "Messages the query still has to read; the line is the "
                   "default lag alert.", "short", ("tripclick_stream_lag_messages", "{{query}}"),
                   steps=[("green", None), ("red", lag_limit)]),
        timeseries("Seconds since last progress over time", "Time since each query last reported a micro-batch; "
                   "the line is the default stall alert.", "s",
                   ("time() - tripclick_stream_last_progress_timestamp_seconds", "{{query}}"),
                   steps=[("green", None), ("red", stall_seconds)]),
    ])


def _postgres_gold() -> dict:
    age = "(time() - tripclick_gold_newest_date_seconds) / 3600"
    age_steps = [("green", None), ("orange", WARN_AGE_HOURS), ("red", CRITICAL_AGE_HOURS)]
    filesystems = 'fstype!~"tmpfs|overlay"'
    free_share = f"node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}}"
    return dashboard("TripClick / PostgreSQL and Gold freshness", "Does the Gold database answer, and is the "
                     "newest date in it as recent as it should be? Plus the free disk space the platform "
                     "needs.", [
        stat("Gold database up", "1 when the PostgreSQL exporter reached the Gold database at its last scrape.",
             "none", "pg_up", [("red", None), ("green", 1)]),
        stat("Hours since the newest Gold date", f"Age of the newest event_date in gold.mart_daily_traffic "
             f"(midnight in PIPELINE_TZ). A day's date is about 18 h old when it lands; orange after "
             f"{WARN_AGE_HOURS} h (the day's deadline passed without it), red after {CRITICAL_AGE_HOURS} h "
             f"(the next morning's limit).", "h", age, age_steps),
        stat("Dates in Gold", "Distinct dates in gold.mart_daily_traffic.", "short", "tripclick_gold_days",
             [("blue", None)]),
        stat("Lowest free disk share", "The fullest filesystem's free share over every node exporter; red at "
             "the default disk alert.", "percentunit", f"min({free_share})",
             [("red", None), ("green", DISK_FREE_RATIO)]),
        timeseries("Hours since the newest Gold date over time", "A sawtooth: it drops when a day's load lands "
                   "and rises by one an hour until the next. The lines are the warning and critical limits.",
                   "h", (age, "age"), steps=age_steps),
        timeseries(f"Connections to {GOLD_DB}", "Backends connected to the Gold database: loads, Superset and "
                   "the exporter itself.", "short",
                   (f'pg_stat_database_numbackends{{datname="{GOLD_DB}"}}', "{{instance}}")),
        timeseries(f"Commits per second in {GOLD_DB}", "Committed transactions per second (5-minute rate); the "
                   "day's load shows as a burst after 18:00.", "ops",
                   (f'rate(pg_stat_database_xact_commit{{datname="{GOLD_DB}"}}[5m])', "{{instance}}")),
        timeseries("Free disk share per filesystem", "Free space over size per mounted filesystem (tmpfs and "
                   "overlay left out); the line is the default disk alert.", "percentunit",
                   (free_share, "{{instance}} {{mountpoint}}"), steps=[("red", None), ("green", DISK_FREE_RATIO)]),
    ])


def build() -> list[dict]:
    return [_kafka(), _pipeline_day(), _streaming(), _postgres_gold()]


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, PromQL) for every target of every panel."""
    return [(board["title"], panel["title"], target["expr"])
            for board in build() for panel in board["panels"] for target in panel["targets"]]


def render(board: dict) -> str:
    return json.dumps(board, sort_keys=True, indent=2) + "\n"


def main() -> int:
    boards = build()
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    wanted = {f"{board['uid']}.json": render(board) for board in boards}
    for stale in {path.name for path in DASHBOARDS_DIR.glob("*.json")} - wanted.keys():
        (DASHBOARDS_DIR / stale).unlink()  # a renamed dashboard must not stay provisioned under its old name
    for name, text in wanted.items():
        (DASHBOARDS_DIR / name).write_text(text, encoding="utf-8")
    print(f"dashboards: wrote {len(boards)} dashboards, {sum(len(b['panels']) for b in boards)} panels, "
          f"{len(panel_queries())} queries to {DASHBOARDS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
