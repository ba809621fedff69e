"""Pure helpers of the jobs: stop deadline, Kafka read window, COPY text escaping, a date's report when the
database is unreachable."""
from __future__ import annotations

import socket
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from infrastructure.settings import load
from processing import cli
from processing.cli import error_line
from processing.kafka_source import window_start_ms
from processing.spark.jobs.load_to_postgres import copy_text
from processing.spark.jobs.streaming_to_silver import StreamOptions, deadline_of

pytestmark = pytest.mark.unit


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp() * 1000)


def test_window_starts_a_lookback_before_the_days_midnight_in_pipeline_tz():
    now = datetime(2031, 3, 5, tzinfo=timezone.utc)
    # 2031-03-01 00:00 in Seoul = 2031-02-28 15:00 UTC; minus 24 h
    assert window_start_ms(date(2031, 3, 1), "Asia/Seoul", 24, now) == ms(2031, 2, 27, 15)


def test_window_of_a_future_day_starts_before_now():
    now = datetime(2026, 11, 26, 10, tzinfo=timezone.utc)
    assert window_start_ms(date(2031, 3, 1), "Asia/Seoul", 2, now) == ms(2026, 11, 26, 8)


def args(**kw):
    return StreamOptions(**{"date": date(2031, 3, 1), "until": None, "max_runtime": None, "trigger": 5.0,
                            "quarantine_trigger": 30.0, "watermark": "10 minutes", "topic": None,
                            "max_offsets_per_trigger": 1000,
                            "drain_timeout": 60.0, "live_trigger": 2.0, "live_retry": 10.0, "no_live": True,
                            "warm_up_rows": 0, "ready_token": None, **kw})


def test_deadline_from_until_is_on_the_date_in_pipeline_tz():
    expected = datetime(2031, 3, 1, 7, 0, tzinfo=timezone.utc).timestamp()  # 16:00 in Seoul
    assert deadline_of(args(until="16:00"), "Asia/Seoul", started=0) == expected


def test_deadline_is_the_earlier_of_until_and_max_runtime():
    started = datetime(2031, 3, 1, 6, 59, tzinfo=timezone.utc).timestamp()
    assert deadline_of(args(until="16:00", max_runtime=30), "Asia/Seoul", started) == started + 30
    assert deadline_of(args(), "Asia/Seoul", started) is None


def test_copy_text_escapes_text_writes_nulls_and_puts_the_date_first():
    table = pa.table({"term": ["a\tb\\c\nd\re", "", None], "clicks": pa.array([7, None, 2], pa.int64()),
                      "share": [1.5, 0.0, 1 / 3]})
    assert copy_text(table, date(2031, 3, 1)) == (
        "2031-03-01\ta\\tb\\\\c\\nd\\re\t7\t1.5\n"
        "2031-03-01\t\t\\N\t0\n"
        "2031-03-01\t\\N\t2\t0.3333333333333333\n")


def test_copy_text_of_no_rows_is_empty():
    assert copy_text(pa.table({"clicks": pa.array([], pa.int64())}), date(2031, 3, 1)) == ""


def test_a_job_out_of_heap_says_which_setting_to_raise():
    spark_error = RuntimeError("An error occurred while calling o97.parquet.\n: org.apache.spark.SparkException: "
                               "Job aborted.\nCaused by: java.lang.OutOfMemoryError: Java heap space\n\tat ...")
    line = error_line(spark_error, load({"ENV_FILE": "/nonexistent", "SPARK_DRIVER_MEMORY": "1g"}))
    assert line.startswith("OutOfMemoryError: ") and "raise SPARK_DRIVER_MEMORY (now 1g;" in line
    assert "\n" not in line
    assert error_line(ValueError("bad date\nmore"), None) == "ValueError: bad date"


def test_a_driver_jvm_lost_under_python_says_which_setting_to_raise():
    Py4JError = type("Py4JError", (Exception,), {})  # py4j's own class, without importing py4j here
    lost = Py4JError("An error occurred while calling o56.toPythonIterator. Trace:\npy4j.Py4JException: "
                     "Method toPythonIterator does not exist\n... py4j.reflection does not exist in the JVM")
    line = error_line(lost, load({"ENV_FILE": "/nonexistent", "SPARK_DRIVER_MEMORY": "1g"}))
    assert line.startswith("Py4JError: the Spark driver JVM died") and "raise SPARK_DRIVER_MEMORY (now 1g;" in line
    assert error_line(Py4JError("Method foo([]) does not exist"), None) == "Py4JError: Method foo([]) does not exist"


@pytest.fixture
def unreachable_database(monkeypatch):
    """Jobs' settings pointing at a port nothing listens on, and no Pushgateway."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("POSTGRES_HOST", "127.0.0.1")
    monkeypatch.setenv("POSTGRES_PORT", str(port))
    monkeypatch.setenv("PUSHGATEWAY_URL", "")


def test_a_pipeline_runs_write_that_fails_is_one_warning_and_the_job_goes_on(unreachable_database, capsys):
    day = date(2031, 3, 1)
    cli.summary("fake_step", day, 7, loaded=7)
    cli.report_date("fake_step", load(), day, 0, 1.5)
    warnings = [line for line in capsys.readouterr().out.splitlines() if "pipeline_runs" in line]
    assert len(warnings) == 1 and warnings[0].startswith("[fake_step] WARNING pipeline_runs not written: "
                                                         "OperationalError: "), warnings
    args = cli.parser("fake_step", "fake job", several=True).parse_args(["--date", day.isoformat()])
    assert cli.run_per_date("fake_step", args, lambda _settings, _day: 0) == 0  # the job's result, not the write's
    assert cli.run_per_date("fake_step", args, lambda _settings, _day: 3) == 3
    out = capsys.readouterr().out
    assert out.count("WARNING pipeline_runs not written") == 2 and "finished exit=3" in out
