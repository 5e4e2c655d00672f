"""Wait, in the triggerer, until call400_billing has work or its deadline passes.

Work is 400 call messages queued (a passive declare: nothing is consumed) or
leftovers in user_prop_db (``sublessor_billing.leftovers``), checked every
``poll_interval`` seconds in a worker thread, each on a connection opened and
closed for the check; user_prop_db is opened as the ``bill`` task opens it
(``hooks.mysql.open_mysql``: the connection's extras too). Each check runs
whatever the other did: a broker that cannot be reached does not hide a
pending order, nor a database the queued messages. Checks that kept failing
for ``fail_after`` seconds count as work (``check_failed``: why), so the pass
runs and fails loudly when the fault is real, rather than the run waiting out
its deadline and ending green.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import closing
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.triggers.base import BaseTrigger, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from sublessor_airflow.hooks.amqp import (
    AmqpSettings,
    QueueMissing,
    open_blocking,
    passive_message_count,
)
from sublessor_airflow.hooks.mysql import open_mysql
from sublessor_billing.config import CALL400_SENSOR_TIMEOUT, parse_int_setting
from sublessor_billing.leftovers import RETRY_AFTER_S, find_leftovers

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

_MYSQL_TIMEOUTS = {"connect_timeout": 5, "read_timeout": 10, "write_timeout": 10}
FAIL_AFTER_S = 30.0  # checks failing this long count as work
_REASON_CHARS = 500


def queued_messages(settings: AmqpSettings) -> int:
    """Messages ready in the queue: open, passively declare, close (consumes nothing)."""
    connection = open_blocking(settings, heartbeat=0)
    try:
        return passive_message_count(connection.channel(), settings.queue)
    finally:
        if connection.is_open:
            connection.close()


def database_work(connection: Connection, retry_after_s: float) -> dict[str, bool]:
    """The kinds of leftovers in user_prop_db found there (``{}``: none)."""
    with closing(open_mysql(connection, **_MYSQL_TIMEOUTS)) as conn:
        found = find_leftovers(conn, retry_after_s=retry_after_s)
    return {kind: True for kind, present in found.as_dict().items() if present}


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_REASON_CHARS]


def look_for_work(
    settings: AmqpSettings, connection: Connection, retry_after_s: float
) -> tuple[dict[str, Any], list[str]]:
    """What there is to do (``{"messages": n}``, ``{<leftover kind>: True, ...}``, ``{}``) and
    why each check that failed failed (``[]`` when both ran). Each check runs whatever the
    other did; the database is not read when messages are queued."""
    failed = []
    try:
        messages = queued_messages(settings)
    except QueueMissing:
        # The pass declares it (and binds it): until then no message can be kept.
        return {"queue_missing": True}, []
    except Exception as exc:
        messages = 0
        failed.append(f"broker ({settings.conn_id}): {_why(exc)}")
    if messages:
        return {"messages": messages}, []
    try:
        work: dict[str, Any] = database_work(connection, retry_after_s)
    except Exception as exc:
        work = {}
        failed.append(f"database ({connection.conn_id}): {_why(exc)}")
    return work, failed


class Call400WorkTrigger(BaseTrigger):
    """Fire ``work`` (what there is to do) as soon as there is some; ``timeout`` at the deadline.

    The deadline is ``started_at + wait_timeout`` (epoch seconds, and Variable
    ``call400_sensor_timeout`` as text; both may be templates rendered by the
    triggerer): absolute, so a trigger restarted elsewhere, or run twice, ends on
    time. Checks that failed on every poll for ``fail_after`` seconds fire
    ``work`` with ``check_failed`` (why). With ``end_task`` the trigger ends the
    task itself (success with the work as its XCom, or skipped), so no worker
    starts for the wait; otherwise the task resumes in ``execute_complete``.
    Polling never consumes anything.
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
        fail_after: float = FAIL_AFTER_S,
        end_task: bool = False,
    ) -> None:
        super().__init__()
        self.amqp_conn_id = amqp_conn_id
        self.user_prop_conn_id = user_prop_conn_id
        self.started_at = started_at
        self.wait_timeout = wait_timeout
        self.poll_interval = float(poll_interval)
        self.retry_after = float(retry_after)
        self.fail_after = float(fail_after)
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
                "fail_after": self.fail_after,
                "end_task": self.end_task,
            },
        )

    @property
    def deadline(self) -> float:
        return float(self.started_at) + parse_int_setting(CALL400_SENSOR_TIMEOUT, self.wait_timeout)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = self.deadline
        settings = AmqpSettings.from_connection(await BaseHook.aget_connection(self.amqp_conn_id))
        connection = await BaseHook.aget_connection(self.user_prop_conn_id)
        failing_since: float | None = None
        logged: list[str] = []
        while True:
            work, failed = await asyncio.to_thread(
                look_for_work, settings, connection, self.retry_after
            )
            if failed:
                failing_since = failing_since or time.monotonic()
                if failed != logged:  # each new reason once, not every poll
                    log.warning("Looking for work failed: %s; polling on", "; ".join(failed))
                if not work and time.monotonic() - failing_since >= self.fail_after:
                    work = {"check_failed": "; ".join(failed)}
            elif failing_since is not None:
                log.info("Looking for work works again")
                failing_since = None
            logged = failed
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
