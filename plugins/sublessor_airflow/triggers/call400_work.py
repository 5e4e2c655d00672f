"""Wait, in the triggerer, until call400_billing has work or its deadline passes.

Work is 400 call messages queued (a passive declare: nothing is consumed) or
leftovers in user_prop_db (``sublessor_billing.leftovers``: calls unjudged,
orders pending, offline decisions undelivered), checked every ``poll_interval``
seconds, both in a worker thread, each on a connection opened and closed for
the check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from sublessor_airflow.hooks.amqp import (
    AmqpSettings,
    QueueMissing,
    open_blocking,
    passive_message_count,
)
from sublessor_billing.config import CALL400_SENSOR_TIMEOUT, parse_int_setting
from sublessor_billing.db.connect import MySqlTarget, connect
from sublessor_billing.leftovers import RETRY_AFTER_S, find_leftovers

log = logging.getLogger(__name__)

_MYSQL_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10, "write_timeout": 10}
_NO_SCHEMA = 1146  # table doesn't exist: the first pass has not migrated user_prop_db yet


def queued_messages(settings: AmqpSettings) -> int:
    """Messages ready in the queue: open, passively declare, close (consumes nothing)."""
    connection = open_blocking(settings, heartbeat=0)
    try:
        return passive_message_count(connection.channel(), settings.queue)
    finally:
        if connection.is_open:
            connection.close()


def database_work(target: MySqlTarget, retry_after_s: float) -> dict[str, bool]:
    """The kinds of leftovers in user_prop_db, each True or False (all False before migrations)."""
    try:
        with closing(connect(target, **_MYSQL_TIMEOUTS)) as conn:
            return find_leftovers(conn, retry_after_s=retry_after_s).as_dict()
    except Exception as exc:
        if getattr(exc, "args", (None,))[0] == _NO_SCHEMA:
            return {}
        raise


def look_for_work(
    settings: AmqpSettings, target: MySqlTarget, retry_after_s: float
) -> dict[str, Any]:
    """``{"messages": n, <leftover kind>: True, ...}`` of what there is to do ({} when nothing)."""
    try:
        messages = queued_messages(settings)
    except QueueMissing:
        # The pass declares it (and binds it): until then no message can be kept.
        return {"queue_missing": True}
    if messages:
        return {"messages": messages}
    return {kind: True for kind, found in database_work(target, retry_after_s).items() if found}


def mysql_target(conn: Any) -> MySqlTarget:
    """Where an Airflow MySQL connection points (host, port, login, password, schema)."""
    return MySqlTarget(
        host=conn.host or "127.0.0.1",
        port=int(conn.port or 3306),
        user=conn.login or "",
        password=conn.password or "",
        database=conn.schema or None,
    )


class Call400WorkTrigger(BaseTrigger):
    """Fire ``work`` (what there is to do) as soon as there is some; ``timeout`` at the deadline.

    The deadline is ``started_at + wait_timeout`` (epoch seconds, and Variable
    ``call400_sensor_timeout`` as text; both may be templates rendered by the
    triggerer): absolute, so a trigger restarted elsewhere, or run twice, ends on
    time. With ``end_task`` the trigger ends the task itself (success with the
    work as its XCom, or skipped), so no worker starts for the wait; otherwise
    the task resumes in ``execute_complete``. Polling never consumes anything.
    """

    def __init__(
        self,
        *,
        amqp_conn_id: str,
        user_prop_conn_id: str,
        started_at: float | str,
        wait_timeout: int | str | None = None,
        poll_interval: float = 1.0,
        retry_after: float = RETRY_AFTER_S,
        end_task: bool = False,
    ) -> None:
        super().__init__()
        self.amqp_conn_id = amqp_conn_id
        self.user_prop_conn_id = user_prop_conn_id
        self.started_at = started_at
        self.wait_timeout = wait_timeout
        self.poll_interval = float(poll_interval)
        self.retry_after = float(retry_after)
        self.end_task = bool(end_task)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "amqp_conn_id": self.amqp_conn_id,
                "user_prop_conn_id": self.user_prop_conn_id,
                "started_at": self.started_at,
                "wait_timeout": self.wait_timeout,
                "poll_interval": self.poll_interval,
                "retry_after": self.retry_after,
                "end_task": self.end_task,
            },
        )

    @property
    def deadline(self) -> float:
        return float(self.started_at) + parse_int_setting(CALL400_SENSOR_TIMEOUT, self.wait_timeout)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = self.deadline
        settings = AmqpSettings.from_connection(await BaseHook.aget_connection(self.amqp_conn_id))
        target = mysql_target(await BaseHook.aget_connection(self.user_prop_conn_id))
        last_error = None
        while True:
            try:
                work = await asyncio.to_thread(look_for_work, settings, target, self.retry_after)
            except Exception as exc:  # a blip of the broker or the database must not fail the run
                if str(exc) != last_error:
                    log.warning("Looking for work failed: %s; polling on until the deadline", exc)
                last_error, work = str(exc), {}
            if work:
                log.info("Work for call400_billing: %s", work)
                yield self._event("work", work)
                return
            if time.time() >= deadline:
                yield self._event("timeout", {"queue": settings.queue})
                return
            await asyncio.sleep(max(0.0, min(self.poll_interval, deadline - time.time())))

    def _event(self, status: str, detail: dict[str, Any]) -> TriggerEvent:
        if not self.end_task:
            return TriggerEvent({"status": status, **detail})
        if status == "work":
            return TaskSuccessEvent(xcoms={"return_value": detail})
        return TaskSkippedEvent()
