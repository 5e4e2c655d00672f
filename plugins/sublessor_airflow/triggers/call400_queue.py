"""Wait, in the triggerer, until the 400 call queue holds messages or a deadline passes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TriggerEvent

from sublessor_airflow.hooks.amqp import (
    AmqpSettings,
    QueueMissing,
    open_blocking,
    passive_message_count,
)

log = logging.getLogger(__name__)


def _count_once(settings: AmqpSettings) -> int:
    """Open, passively declare the queue, close: consumes nothing (runs in a worker thread)."""
    connection = open_blocking(settings, heartbeat=0)
    try:
        return passive_message_count(connection.channel(), settings.queue)
    finally:
        if connection.is_open:
            connection.close()


class Call400QueueTrigger(BaseTrigger):
    """Fire ``messages`` when the queue is non-empty, ``timeout`` at ``deadline`` (epoch seconds).

    The deadline is absolute, so a trigger restarted by another triggerer (or run
    twice) still ends on time; polling never consumes or acknowledges anything.
    """

    def __init__(self, *, amqp_conn_id: str, deadline: float, poll_interval: float = 5.0) -> None:
        super().__init__()
        self.amqp_conn_id = amqp_conn_id
        self.deadline = float(deadline)
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "amqp_conn_id": self.amqp_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        conn = await BaseHook.aget_connection(self.amqp_conn_id)
        settings = AmqpSettings.from_connection(conn)
        while True:
            try:
                count = await asyncio.to_thread(_count_once, settings)
            except QueueMissing:
                yield TriggerEvent(
                    {
                        "status": "error",
                        "message": f"Queue {settings.queue!r} no longer exists on {settings.where} "
                        f"({self.amqp_conn_id}); the next run declares it again.",
                    }
                )
                return
            except ConnectionError as exc:
                # A broker blip must not fail the run; keep polling until the deadline.
                log.warning("%s; retrying in %ss", exc, self.poll_interval)
                count = 0
            if count > 0:
                yield TriggerEvent({"status": "messages", "count": count})
                return
            remaining = self.deadline - time.time()
            if remaining <= 0:
                yield TriggerEvent({"status": "timeout", "queue": settings.queue})
                return
            await asyncio.sleep(min(self.poll_interval, remaining))
