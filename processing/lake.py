"""Where each layer lives under LAKE_ROOT (a local folder or s3a://bucket/prefix)."""
from __future__ import annotations

from datetime import date

def layer(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def partition(root: str, name: str, day: date) -> str:
    """One date partition of a layer, e.g. <root>/bronze/event_date=2024-01-02."""
    return f"{layer(root, name)}/event_date={day.isoformat()}"


# Streaming outputs live in `_`-prefixed folders: Spark's partition discovery skips them, so readers of
# silver/ and quarantine/ only ever see the exact daily partitions written by etl_to_gold.
def silver_stream(root: str) -> str:
    return layer(root, "silver/_stream")


def quarantine_stream(root: str) -> str:
    return layer(root, "quarantine/_stream")


def checkpoint(root: str, query: str) -> str:
    return layer(root, f"checkpoints/{query}")


def gold_partition(root: str, mart: str, day: date) -> str:
    return partition(root, f"gold/{mart}", day)
