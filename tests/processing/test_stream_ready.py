"""The stream's ready marker and the wait for it (processing/stream_ready.py) on a local lake; the S3 path runs in
the docker-mode world (tests/deployment/test_docker_e2e.py: wait_for_stream on the bucket).
Also: the warm-up's synthetic clicks are valid wire messages."""
from __future__ import annotations

import itertools

import pytest

from infrastructure.local import s3
from processing import stream_ready, transforms
from processing.warm_up import SYNTHETIC_DAY, synthetic_clicks

pytestmark = pytest.mark.unit


def test_marker_is_per_token_under_the_checkpoints():
    assert stream_ready.marker_path("s3a://lake/root/", "ab12") == "s3a://lake/root/checkpoints/_ready/ab12"
    for bad in ("", "../x", "a/b", "x" * 65):
        with pytest.raises(ValueError, match="ready token"):
            stream_ready.marker_path("/lake", bad)


def test_s3_location_splits_bucket_and_key_for_both_schemes():
    assert s3.location(stream_ready.marker_path("s3a://lake/root/", "ab12")) == ("lake", "root/checkpoints/_ready/ab12")
    assert s3.location("s3://bucket/_preflight/x") == ("bucket", "_preflight/x")


def test_wait_polls_until_the_marker_exists_or_the_timeout():
    ticks = itertools.count(0, 1.0)
    clock = lambda: next(ticks)  # noqa: E731 - one second per call
    answers = iter([False, False, True])
    assert stream_ready.wait(lambda: next(answers), timeout=10, clock=clock, sleep=lambda _: None) == 3.0
    ticks = itertools.count(0, 1.0)
    assert stream_ready.wait(lambda: False, timeout=3, clock=clock, sleep=lambda _: None) is None


def test_main_takes_and_removes_the_runs_marker(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path))
    marker = tmp_path / "checkpoints" / "_ready" / "run1"
    marker.parent.mkdir(parents=True)
    marker.write_text("2026-12-02T00:00:00+00:00")
    assert stream_ready.main(["--token", "run1", "--timeout", "5"]) == 0
    assert not marker.exists()
    assert "stream_ready: token=run1 ready=yes" in capsys.readouterr().out


def test_main_fails_clearly_when_the_stream_never_reports_ready(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path))
    (tmp_path / "checkpoints" / "_ready").mkdir(parents=True)
    (tmp_path / "checkpoints" / "_ready" / "another-run").write_text("")
    assert stream_ready.main(["--token", "run2", "--timeout", "0"]) == 1
    out = capsys.readouterr().out
    assert "did not report ready within 0s" in out and "producers start anyway" in out
    assert "\nstream_ready: token=run2 ready=no waited_s=0\n" in out


def test_warm_up_clicks_are_valid_messages_of_the_synthetic_day():
    values = list(synthetic_clicks(SYNTHETIC_DAY, 7, "t", size=50, total=100, offset=25))
    assert len(values) == 50
    assert {transforms.validation_reason(v) for v in values} == {None}
