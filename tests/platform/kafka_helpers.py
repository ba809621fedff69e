"""Produce and consume test records on a real cluster, for the shared and the private platform's tests."""
from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Producer


class DeliveryFailed(Exception):
    def __init__(self, errors):
        super().__init__(f"{len(errors)} deliveries failed, first: {errors[0]}")
        self.errors = errors


def produce(brokers: str, topic: str, count: int, extra: dict | None = None, tag: str = "") -> set[str]:
    """Produce count records with acks=all; return the values acknowledged, raise on any failure."""
    errors, acked = [], set()
    producer = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True,
                         **(extra or {})})

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.add(msg.value().decode())

    for i in range(count):
        producer.produce(topic, key=f"k{i}", value=f"{topic}-{tag}{i}", on_delivery=on_delivery)
    producer.flush(60)
    if errors:
        raise DeliveryFailed(errors)
    return acked


def consume(brokers: str, topic: str, expected: int, timeout: float = 60.0) -> set[str]:
    """The values of up to `expected` records of topic, read from the start by a fresh group."""
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"test-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                values.add(msg.value().decode())
    finally:
        consumer.close()
    return values
