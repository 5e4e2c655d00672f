"""Deferrable sensor: wait for 400 call messages without holding a worker slot."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from sublessor_airflow.hooks.amqp import Call400AmqpHook
from sublessor_airflow.triggers.call400_queue import Call400QueueTrigger
from sublessor_airflow.variables import get_int
from sublessor_billing.config import CALL400_AMQP, CALL400_SENSOR_TIMEOUT

if TYPE_CHECKING:
    from airflow.sdk import Context

# The scheduler's own deferral timeout is only a safety net behind the trigger's deadline.
_SAFETY_MARGIN_S = 120


class Call400QueueSensor(BaseSensorOperator):
    """Succeed with the message count once the queue holds messages; skip after the timeout.

    The timeout comes from Variable ``call400_sensor_timeout`` (seconds). A timed
    out wait skips the run instead of failing it: an empty queue is not an error.
    """

    template_fields = ("amqp_conn_id",)

    def __init__(
        self, *, amqp_conn_id: str = CALL400_AMQP, poll_interval: float = 5.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.amqp_conn_id = amqp_conn_id
        self.poll_interval = poll_interval

    @property
    def hook(self) -> Call400AmqpHook:
        return Call400AmqpHook(self.amqp_conn_id)

    def poke(self, context: Context) -> bool:
        hook = self.hook
        try:
            hook.ensure_topology()
            return hook.message_count() > 0
        finally:
            hook.close()

    def execute(self, context: Context) -> int | None:
        # Declaring the topology first means messages published from now on are kept.
        hook = self.hook
        try:
            hook.ensure_topology()
            count = hook.message_count()
        finally:
            hook.close()
        if count > 0:
            self.log.info("%s messages waiting in %s", count, hook.settings.queue)
            return count
        timeout = get_int(CALL400_SENSOR_TIMEOUT)
        self.log.info(
            "Queue %s is empty: waiting up to %ss (deferred)", hook.settings.queue, timeout
        )
        self.defer(
            trigger=Call400QueueTrigger(
                amqp_conn_id=self.amqp_conn_id,
                deadline=time.time() + timeout,
                poll_interval=min(self.poll_interval, max(timeout, 1)),
            ),
            method_name="execute_complete",
            timeout=timeout + _SAFETY_MARGIN_S,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> int:
        event = event or {}
        status = event.get("status")
        if status == "messages":
            self.log.info("%s messages waiting", event.get("count"))
            return int(event["count"])
        if status == "timeout":
            raise AirflowSkipException(
                f"No 400 call message arrived in queue {event.get('queue')!r} before the timeout "
                f"(Variable {CALL400_SENSOR_TIMEOUT.name}); this run has nothing to take in."
            )
        raise AirflowException(
            f"Waiting for 400 call messages failed: {event.get('message', event)}"
        )
