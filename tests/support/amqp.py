"""RabbitMQ for the tests: the broker's URL, publishing, counting what is queued."""

from __future__ import annotations

import os
from typing import Any

import pika

from support.waiting import wait_until

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def queued(queue: str) -> int:
    """Messages ready in ``queue`` (not counting those delivered and unacknowledged)."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def publish(exchange: str, routing_key: str, bodies: list[bytes], *, confirm: bool = True) -> None:
    """Publish ``bodies`` in order; with ``confirm``, each is confirmed by the broker."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = conn.channel()
        if confirm:
            channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish(exchange, routing_key, body)
    finally:
        conn.close()


def publish_and_wait(env: Any, bodies: list[bytes], *, timeout: float = 60) -> None:
    """Publish many bodies without per-message confirms, then wait until all are queued.

    ``env`` has ``names`` (exchange, routing_key, queue), as the call400 fixture does.
    """
    before = queued(env.names["queue"])
    publish(env.names["exchange"], env.names["routing_key"], bodies, confirm=False)
    want = before + len(bodies)
    wait_until(
        lambda: queued(env.names["queue"]) >= want,
        timeout,
        f"{len(bodies)} published messages to be queued in {env.names['queue']}",
    )
