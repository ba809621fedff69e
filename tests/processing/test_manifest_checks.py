"""Reconcile's completeness-from-the-source checks on producer manifests (pure)."""
from __future__ import annotations

import json
from datetime import date

import pytest

from processing.manifests import manifest_checks, manifest_key

pytestmark = pytest.mark.unit
DAY = date(2031, 3, 1)


def manifest(server: str, **changes) -> bytes:
    m = {"event_date": DAY.isoformat(), "server": server, "file": f"/data/{server}/events.json",
         "mode": "realtime", "run_id": "r1", "started_at": "2031-03-01T06:00:00Z",
         "finished_at": "2031-03-01T07:00:00Z", "lines_read": 12, "blank_lines": 1, "sent": 10,
         "acknowledged": 10, "dead_lettered": 1, "delivery_failed": 0, "rejected_by_reason": {"bad_json": 1},
         "complete": True, "exit_code": 0}
    m.update(changes)
    return json.dumps(m).encode()


def run(manifests, bronze):
    return {name: ok for name, ok, _ in manifest_checks(DAY, ("server0", "server1"), manifests, bronze)}


def test_complete_balanced_manifests_within_bronze_pass():
    found = {manifest_key(DAY, "server0"): manifest("server0"), manifest_key(DAY, "server1"): manifest("server1")}
    assert run(found, {"server0": 10, "server1": 13}) == {
        "manifest_complete:server0": True, "manifest_balanced:server0": True, "acknowledged_le_bronze:server0": True,
        "manifest_complete:server1": True, "manifest_balanced:server1": True, "acknowledged_le_bronze:server1": True}


@pytest.mark.parametrize("changes, bronze, failing", [
    ({"complete": False, "exit_code": 1}, 10, {"manifest_complete:server1"}),
    ({"lines_read": 13}, 10, {"manifest_balanced:server1"}),
    ({}, 9, {"acknowledged_le_bronze:server1"}),  # Kafka acknowledged more than Bronze holds
    (None, 10, {"manifest_complete:server1", "manifest_balanced:server1", "acknowledged_le_bronze:server1"}),
])
def test_each_broken_invariant_fails_exactly_its_check(changes, bronze, failing):
    found = {manifest_key(DAY, "server0"): manifest("server0")}
    if changes is not None:
        found[manifest_key(DAY, "server1")] = manifest("server1", **changes)
    result = run(found, {"server0": 10, "server1": bronze})
    assert {name for name, ok in result.items() if not ok} == failing


def test_an_unreadable_manifest_fails_and_another_days_manifest_does_not_count():
    found = {manifest_key(DAY, "server0"): b"{not json",
             manifest_key(date(2031, 3, 2), "server1"): manifest("server1")}
    assert not any(run(found, {"server0": 10, "server1": 10}).values())
