"""The streaming job's "ready" marker, and the DAG step `wait_for_stream` that waits for it.

The streaming job warms its JVM up (processing/warm_up.py), starts its queries, then writes
<LAKE_ROOT>/checkpoints/_ready/<token>. `python -m processing.stream_ready --token T` polls for that object
(a local file, or S3 through boto3: no JVM), deletes it and exits 0, so the DAG starts the producers only
once the stream can take their first clicks at full speed. After --timeout seconds without it, exit 1 with a
clear message: the DAG starts the producers anyway (a stream that never came up must not hold up the day;
Bronze rebuilds Silver). The token is per DAG run (a hash of its run id), so a marker of an earlier run
never lets a later one through.
Summary line: `stream_ready: token=T ready=yes|no waited_s=S`.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable

from infrastructure.settings import Settings
from processing import cli, lake, lake_io

JOB = "stream_ready"
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 1.0


def ready_token(value: str) -> str:
    """A token checked to be one safe path segment (also the argparse type of both CLIs' token option)."""
    if not TOKEN_PATTERN.match(value):
        raise ValueError(f"ready token must match {TOKEN_PATTERN.pattern}, got {value!r}")
    return value


def marker_path(root: str, token: str) -> str:
    return lake.layer(root, f"checkpoints/_ready/{ready_token(token)}")


def write_marker(spark, root: str, token: str, detail: str) -> str:
    """Called by the streaming job once its queries run; returns the marker's path."""
    path = marker_path(root, token)
    lake_io.write_text(spark, path, detail)
    return path


def marker_probe(settings: Settings, path: str) -> tuple[Callable[[], bool], Callable[[], None]]:
    """(exists, delete) for the marker at `path`: plain files locally, boto3 for s3a:// or s3://."""
    if not settings.lake_is_s3:
        return (lambda: os.path.exists(path)), (lambda: os.remove(path))
    from infrastructure.local import s3

    client = s3.client(settings)
    bucket, key = s3.location(path)

    def exists() -> bool:  # the exact key: a prefix would also match a longer token
        return any(item["Key"] == key for item in client.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", []))

    return exists, lambda: client.delete_object(Bucket=bucket, Key=key)


def wait(exists: Callable[[], bool], timeout: float, poll: float = POLL_SECONDS,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Seconds until exists() held, or None after `timeout` seconds without it."""
    started = clock()
    while True:
        if exists():
            return clock() - started
        if clock() - started >= timeout:
            return None
        sleep(poll)


def wait_for_marker(settings: Settings, token: str, timeout: float) -> int:
    path = marker_path(settings.lake_root, token)
    cli.log(JOB, f"waiting up to {timeout:.0f}s for {path}")
    exists, delete = marker_probe(settings, path)
    waited = wait(exists, timeout)
    if waited is None:
        cli.log(JOB, f"ERROR the streaming job did not report ready within {timeout:.0f}s (it failed or is still "
                     "starting); the producers start anyway, and Bronze rebuilds Silver")
        print(f"{JOB}: token={token} ready=no waited_s={timeout:.0f}", flush=True)
        return 1
    delete()
    print(f"{JOB}: token={token} ready=yes waited_s={waited:.1f}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m processing.{JOB}", description=__doc__.splitlines()[0])
    parser.add_argument("--token", required=True, type=ready_token,
                        help="the run's token, as given to streaming_to_silver --ready-token")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help=f"give up after this many seconds (default {DEFAULT_TIMEOUT_SECONDS:.0f})")
    args = parser.parse_args(argv)
    return cli.run(JOB, lambda settings: wait_for_marker(settings, args.token, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
