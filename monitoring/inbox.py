"""The local alert inbox: an SMTP sink and a Slack-webhook stand-in, so local mode's alerts land somewhere.

    python -m monitoring.inbox --smtp-port 9396 --http-port 9397 --out RUN_DIR/monitoring/inbox.jsonl

Every e-mail (SMTP, no TLS, no auth: bound to 127.0.0.1 only) and every HTTP POST (a Slack incoming webhook's
JSON payload) becomes one JSON line in --out, with the channel, the time it arrived and its content. GET
/health answers 200. `make monitoring` runs it; the tests read what Alertmanager and Airflow sent with
`messages()`. In a deployment ALERT_SMTP_SMARTHOST and ALERT_SLACK_WEBHOOK_URL name the real ones instead.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_write_lock = threading.Lock()


def _append(out: Path, record: dict) -> None:
    record = {"received_at": datetime.now(timezone.utc).isoformat(), **record}
    with _write_lock, out.open("a", encoding="utf-8") as sink:
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")


class MailHandler:
    """aiosmtpd handler: each accepted message becomes an `email` record."""

    def __init__(self, out: Path) -> None:
        self.out = out

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        _append(self.out, {"channel": "email", "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                           "subject": str(message["subject"] or ""),
                           "body": body.get_content() if body is not None else ""})
        return "250 Message accepted"


def _webhook_handler(out: Path) -> type[BaseHTTPRequestHandler]:
    class WebhookHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw
            _append(out, {"channel": "webhook", "path": self.path, "payload": payload})
            self._answer(200, b"ok")

        def do_GET(self) -> None:  # noqa: N802
            self._answer(200 if self.path == "/health" else 404, b"ok")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # the JSON lines are the log
            pass

    return WebhookHandler


def serve(host: str, smtp_port: int, http_port: int, out: Path) -> None:
    from aiosmtpd.controller import Controller

    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch()
    mail = Controller(MailHandler(out), hostname=host, port=smtp_port)
    mail.start()
    print(f"inbox: SMTP on {host}:{smtp_port}, webhooks on http://{host}:{http_port}/, messages to {out}", flush=True)
    try:
        ThreadingHTTPServer((host, http_port), _webhook_handler(out)).serve_forever()
    finally:
        mail.stop()


def messages(out: Path) -> list[dict]:
    """Every record the inbox wrote, oldest first."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]


def wait_for(out: Path, predicate, timeout: float, what: str) -> list[dict]:
    """Records matching `predicate`, once there is at least one; AssertionError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = [record for record in messages(out) if predicate(record)]
        if found:
            return found
        if time.monotonic() > deadline:
            seen = [(r["channel"], r.get("subject") or str(r.get("payload"))[:120]) for r in messages(out)]
            raise AssertionError(f"no {what} in {out} after {timeout:.0f}s; it holds: {seen}")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m monitoring.inbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.smtp_port, args.http_port, args.out)


if __name__ == "__main__":
    main()
