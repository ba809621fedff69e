"""The pipeline's own metrics: one catalogue, and the one way jobs publish them (the Pushgateway).

Batch drivers and producers exit long before a scrape, so each pushes its figures when it ends; the streaming
job pushes after every micro-batch (monitoring.stream_listener). Every name starts with `tripclick_`; the
catalogue below and EXTERNAL_METRICS (what the services export: Kafka's JMX agent, the PostgreSQL, node and
StatsD exporters) are the table in monitoring/README.md (`python -m monitoring.metrics` prints it; a unit test
keeps the two equal).

A push never fails the job that makes it: the error is logged once per process and the job goes on (metrics are
the operator's view, the data's completeness is proven by the gate and reconcile, not by them).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("tripclick.metrics")
PUSH_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Metric:
    name: str
    labels: tuple[str, ...]  # the push's grouping key (job and instance are Prometheus' own)
    help: str


def _family(job: str, labels: tuple[str, ...], rows: list[tuple[str, str]]) -> dict[str, Metric]:
    return {f"tripclick_{job}_{suffix}": Metric(f"tripclick_{job}_{suffix}", labels, text) for suffix, text in rows}


CATALOGUE: dict[str, Metric] = {
    **_family("producer", ("server", "date"), [
        ("lines_read", "Lines the producer read from the day file (blank lines included)."),
        ("events_acknowledged", "Events the brokers acknowledged (acks=all) in this run."),
        ("events_dead_lettered", "Lines sent to the dead-letter topic (not a valid event)."),
        ("duration_seconds", "Wall time of the producer run."),
        ("complete", "1 when the run read the whole file and every event was acknowledged, else 0."),
        ("finished_timestamp_seconds", "When the run ended (Unix time)."),
    ]),
    **_family("job", ("step", "date"), [
        ("rows", "Rows the batch step wrote (Bronze rows, Gold mart rows, rows loaded, checks run)."),
        ("duration_seconds", "Wall time of the batch step's work for the date."),
        ("success", "1 when the step finished its date, 0 when it failed."),
        ("finished_timestamp_seconds", "When the step ended (Unix time)."),
    ]),
    **_family("reconcile", ("stage", "date"), [
        ("checks_failed", "Count and quality checks that failed (0 = the date reconciles)."),
        ("checks_total", "Checks run."),
        ("finished_timestamp_seconds", "When the check ended (Unix time)."),
    ]),
    **_family("stream", ("query",), [
        ("rows_total", "Rows the query has read from its source since it started (grows with every micro-batch)."),
        ("input_rows_per_second", "Rows per second arriving from Kafka in the last micro-batch."),
        ("processed_rows_per_second", "Rows per second the last micro-batch processed."),
        ("batch_duration_seconds", "Wall time of the last micro-batch."),
        ("state_rows", "Rows held in the deduplication state."),
        ("lag_messages", "Messages between the last micro-batch's end offsets and the topic's end."),
        ("last_progress_timestamp_seconds", "When the last micro-batch reported progress (Unix time)."),
        ("running", "1 while the query runs; the group is deleted when it stops."),
    ]),
}

# What the services export, as the rules and dashboards use it: name -> (source, labels, meaning).
EXTERNAL_METRICS = {
    "tripclick_gold_newest_date_seconds": ("PostgreSQL exporter query", "",
                                           "Newest event_date in gold.mart_daily_traffic: its midnight in "
                                           "PIPELINE_TZ (Unix time)."),
    "tripclick_gold_days": ("PostgreSQL exporter query", "", "Dates in gold.mart_daily_traffic."),
    "kafka_server_replicamanager_value": ("Kafka JMX agent", "name (UnderReplicatedPartitions, PartitionCount, ...)",
                                          "Replica manager gauges per broker."),
    "kafka_controller_kafkacontroller_value": ("Kafka JMX agent", "name (OfflinePartitionsCount, "
                                               "ActiveControllerCount, ActiveBrokerCount)", "Controller gauges."),
    "kafka_server_brokertopicmetrics_count": ("Kafka JMX agent", "name (MessagesInPerSec, BytesInPerSec, ...), topic",
                                              "Counters per broker and topic (rate() them)."),
    "pg_up": ("PostgreSQL exporter", "", "1 when the Gold database answers."),
    "pg_stat_database_numbackends": ("PostgreSQL exporter", "datname", "Open connections per database."),
    "pg_stat_database_xact_commit": ("PostgreSQL exporter", "datname", "Committed transactions (rate() them)."),
    "airflow_dagrun_duration_seconds": ("StatsD exporter", "dag_id, state", "DAG run durations (summary)."),
    "airflow_task_finished_total": ("StatsD exporter", "dag_id, task_id, state", "Task instances finished."),
    "airflow_task_duration_seconds": ("StatsD exporter", "dag_id, task_id", "Task execution times (histogram)."),
    "airflow_task_failures_total": ("StatsD exporter", "", "Task instances failed."),
    "airflow_scheduler_heartbeat_total": ("StatsD exporter", "", "Scheduler heartbeats."),
    "node_filesystem_avail_bytes": ("node exporter", "mountpoint, fstype", "Free bytes per mount point."),
    "node_filesystem_size_bytes": ("node exporter", "mountpoint, fstype", "Size in bytes per mount point."),
    "up": ("Prometheus", "job, instance", "1 when a scrape target answered."),
}


def markdown_table() -> str:
    """The metrics table of monitoring/README.md (tests/monitoring keeps the two equal)."""
    rows = [f"| `{m.name}` | Pushgateway (push) | {', '.join(m.labels)} | {m.help} |" for m in CATALOGUE.values()]
    rows += [f"| `{name}` | {source} | {labels} | {meaning} |"
             for name, (source, labels, meaning) in EXTERNAL_METRICS.items()]
    return "\n".join(["| Metric | From | Labels | Meaning |", "|---|---|---|---|", *rows])


def pushgateway_url() -> str:
    """PUSHGATEWAY_URL from the one configuration mechanism; read per push, so tests may point it elsewhere."""
    from infrastructure.settings import resolve

    return resolve()["PUSHGATEWAY_URL"].strip()


_warned: set[str] = set()


def push(job: str, grouping: dict[str, str], values: dict[str, float]) -> bool:
    """Replace the group (job, grouping) on the Pushgateway with `values` (suffix -> value, catalogue names
    `tripclick_<job>_<suffix>`). Returns whether it was delivered; no URL configured means nothing to do."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    url = pushgateway_url()
    if not url:
        return False
    registry = CollectorRegistry()
    for suffix, value in values.items():
        metric = CATALOGUE[f"tripclick_{job}_{suffix}"]
        Gauge(metric.name, metric.help, registry=registry).set(value)
    try:
        push_to_gateway(url, job=f"tripclick_{job}", registry=registry, grouping_key=grouping,
                        timeout=PUSH_TIMEOUT_SECONDS)
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
        if url not in _warned:
            _warned.add(url)
            log.warning("metrics push to %s failed (%s); the job goes on without metrics", url, exc)
        return False
    return True


def delete(job: str, grouping: dict[str, str]) -> None:
    """Remove a group (a stopped stream's `running` must not linger as 1)."""
    from prometheus_client import delete_from_gateway

    url = pushgateway_url()
    if url:
        try:
            delete_from_gateway(url, job=f"tripclick_{job}", grouping_key=grouping, timeout=PUSH_TIMEOUT_SECONDS)
        except OSError as exc:
            log.warning("metrics delete at %s failed (%s)", url, exc)


if __name__ == "__main__":
    print(markdown_table())
