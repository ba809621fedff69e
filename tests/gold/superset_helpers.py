"""What the Superset tests of both modes share (local: tests/gold/test_superset.py, docker:
tests/deployment/test_docker_e2e.py): the provisioned assets' counts and a chart's saved query over a range."""
from __future__ import annotations

import json

ASSET_COUNTS = {"databases": 1, "datasets": 12, "charts": 21, "dashboards": 3}


def run_saved_query(client, chart_id: int, time_range: str) -> dict:
    """The chart's saved query context, restricted to time_range as the dashboard's date filter does."""
    context = json.loads(client.get(f"/api/v1/chart/{chart_id}")["result"]["query_context"])
    for query in context["queries"]:
        query["time_range"] = time_range
        for flt in query["filters"]:
            if flt["op"] == "TEMPORAL_RANGE":
                flt["val"] = time_range
    (result,) = client.post("/api/v1/chart/data", context)["result"]
    return result
