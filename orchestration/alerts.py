"""Failure and SLA-miss alerts to people: one e-mail and one Slack incoming-webhook message each.

Every task of both DAGs has `Alerts.task_failed` as its on_failure_callback (Airflow calls it once a task
has failed for good, not before a retry); `Alerts.sla_missed` is the DAGs' sla_miss_callback. They send
through the SMTP and Slack providers' notifiers, whose Connections say where to (server, sender and
recipients; the webhook URL), so no DAG file holds an address or a secret. `make airflow` provisions the
Connections from ALERT_* (orchestration.provision); a deployment passes them as AIRFLOW_CONN_* variables.
"""
from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from airflow.hooks.base import BaseHook
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.providers.smtp.notifications.smtp import SmtpNotifier
from airflow.utils.types import DagRunType

EMAIL_CONN_ID = "tripclick_alert_email"  # SMTP server; extra: from_email, to (comma-separated)
SLACK_CONN_ID = "tripclick_alert_slack"  # password: the incoming webhook's URL
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    subject: str
    lines: tuple[str, ...]
    link: str

    def html(self) -> str:
        body = "".join(f"<p>{html.escape(line)}</p>\n" for line in self.lines)
        link = html.escape(self.link)
        return f'{body}<p><a href="{link}">{link}</a></p>\n'

    def slack_text(self) -> str:
        # &, < and > are control characters of Slack's markup: escaped everywhere, the link as <url|label>.
        def escape(text: str) -> str:
            return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return "\n".join([f"*{escape(self.subject)}*", *map(escape, self.lines),
                          f"<{escape(self.link)}|Open in Airflow>"])


def send(message: Message, context) -> None:
    """Both channels; one that fails is logged, never raised: it must neither hide the task's own error nor
    keep the other channel from sending."""
    for channel, notifier in (("e-mail", _email), ("Slack", _slack)):
        try:
            # notify(), not the notifier's __call__: that renders every text as Jinja, and an error message
            # may hold braces.
            notifier(message).notify(context)
        except Exception:
            log.exception("alert %r: the %s notification failed", message.subject, channel)


def _email(message: Message) -> SmtpNotifier:
    extra = BaseHook.get_connection(EMAIL_CONN_ID).extra_dejson
    return SmtpNotifier(from_email=extra.get("from_email"), to=extra["to"], smtp_conn_id=EMAIL_CONN_ID,
                        subject=message.subject, html_content=message.html())


def _slack(message: Message) -> SlackWebhookNotifier:
    return SlackWebhookNotifier(slack_webhook_conn_id=SLACK_CONN_ID, text=message.slack_text())


@dataclass(frozen=True)
class Alerts:
    airflow_url: str  # DagConfig.airflow_url
    processed: Callable  # (logical_date, params) -> what a run processes: its date, or the backfill's range

    def run_link(self, dag_id: str, run_id: str, task_id: str) -> str:
        return f"{self.airflow_url}/dags/{dag_id}/grid?{urlencode({'dag_run_id': run_id, 'task_id': task_id})}"

    def failure(self, context) -> Message:
        ti = context["ti"]
        processed = self.processed(context["logical_date"], context["params"])
        error = str(context.get("exception") or "(no exception recorded)").strip().splitlines() or [""]
        return Message(
            subject=f"[TripClick] FAILED {ti.dag_id}.{ti.task_id} for {processed} (try {ti.try_number})",
            lines=(f"DAG {ti.dag_id}, task {ti.task_id}, try {ti.try_number}: failed.", f"Processed: {processed}",
                   f"Run: {ti.run_id}", f"Error: {error[0]}"),
            link=self.run_link(ti.dag_id, ti.run_id, ti.task_id))

    def task_failed(self, context) -> None:
        send(self.failure(context), context)

    def sla_miss(self, dag, slas) -> Message:
        # A miss is recorded for a scheduled slot whose run may not exist yet: what it processes comes from the
        # DAG's default params, and its link names the run id the scheduler gives that slot.
        params = dag.params.dump()
        lines, links = [], []
        for sla in slas:
            deadline = (sla.execution_date + dag.get_task(sla.task_id).sla).astimezone(dag.timezone)
            run_id = DagRunType.SCHEDULED.generate_run_id(sla.execution_date)
            lines.append(f"DAG {dag.dag_id}, task {sla.task_id}: not done by {deadline.isoformat()} for "
                         f"{self.processed(sla.execution_date, params)} (run {run_id})")
            links.append(self.run_link(dag.dag_id, run_id, sla.task_id))
        first = slas[0]
        return Message(subject=f"[TripClick] SLA MISSED {dag.dag_id}.{first.task_id} for "
                               f"{self.processed(first.execution_date, params)}",
                       lines=tuple(lines), link=links[0])

    def sla_missed(self, dag, task_list, blocking_task_list, slas, blocking_tis) -> None:
        send(self.sla_miss(dag, slas), {"dag": dag})
