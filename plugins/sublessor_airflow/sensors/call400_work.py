"""Sensor of call400_billing: wait for work (messages queued or leftovers) without a worker.

Under the scheduler it starts in the triggerer (``start_from_trigger``): the
trigger polls, then ends the task itself, successful (its XCom says what work
there is) or skipped at the deadline; no worker process starts for the wait.
Run directly (``airflow dags test``, ``execute()``), it pokes once (declares the
topology, looks) and defers to the same trigger when there is nothing yet; both
ways end in ``execute_complete`` or the trigger's own end of the task.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from airflow.triggers.base import StartTriggerArgs

from sublessor_airflow.hooks.amqp import Call400AmqpHook
from sublessor_airflow.triggers.call400_work import Call400WorkTrigger, database_work
from sublessor_airflow.variables import get_int
from sublessor_billing.config import CALL400_AMQP, CALL400_SENSOR_TIMEOUT, USER_PROP_DB
from sublessor_billing.leftovers import RETRY_AFTER_S

if TYPE_CHECKING:
    from airflow.sdk import Context

# The run's start and the Variable, rendered where the trigger starts (triggerer or worker).
STARTED_AT = "{{ dag_run.start_date.timestamp() }}"
TIMEOUT = "{{ var.value.get('" + CALL400_SENSOR_TIMEOUT.name + "', '') }}"
# The scheduler's own deferral timeout is only a safety net behind the trigger's deadline.
_SAFETY_MARGIN_S = 120


class Call400WorkSensor(BaseSensorOperator):
    """Succeed as soon as call400_billing has work; skip when none came by the deadline.

    The deadline is the run's start plus Variable ``call400_sensor_timeout``
    (seconds): an idle run ends skipped, not failed, and the next one starts.
    Polls every ``poll_interval`` seconds. A pending order or offline decision
    a pass tried within ``retry_after`` seconds is not work yet (leftovers.py).
    """

    template_fields = ("amqp_conn_id", "user_prop_conn_id", "started_at", "wait_timeout")

    def __init__(
        self,
        *,
        amqp_conn_id: str = CALL400_AMQP,
        user_prop_conn_id: str = USER_PROP_DB,
        poll_interval: float = 1.0,
        retry_after: float = RETRY_AFTER_S,
        start_from_trigger: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.amqp_conn_id = amqp_conn_id
        self.user_prop_conn_id = user_prop_conn_id
        self.started_at = STARTED_AT
        self.wait_timeout = TIMEOUT
        self.poll_interval = poll_interval
        self.retry_after = retry_after
        self.start_from_trigger = start_from_trigger
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{Call400WorkTrigger.__module__}.{Call400WorkTrigger.__qualname__}",
            trigger_kwargs={
                **self._trigger_kwargs(),
                "started_at": self.started_at,
                "wait_timeout": self.wait_timeout,
                "end_task": True,
            },
            next_method="execute_complete",
        )

    def _trigger_kwargs(self) -> dict[str, Any]:
        return {
            "amqp_conn_id": self.amqp_conn_id,
            "user_prop_conn_id": self.user_prop_conn_id,
            "poll_interval": self.poll_interval,
            "retry_after": self.retry_after,
        }

    def poke(self, context: Context) -> PokeReturnValue:
        """Declare the topology (messages published from now on are kept), then look once.

        Done when there is work; its XCom value says what (as the trigger's event does).
        """
        hook = Call400AmqpHook(self.amqp_conn_id)
        try:
            hook.ensure_topology()
            messages = hook.message_count()
        finally:
            hook.close()
        if messages:
            work: dict[str, Any] = {"messages": messages}
        else:
            work = database_work(hook.get_connection(self.user_prop_conn_id), self.retry_after)
        return PokeReturnValue(is_done=bool(work), xcom_value=work)

    def execute(self, context: Context) -> dict[str, Any] | None:
        found = self.poke(context)
        if found:
            self.log.info("Work for call400_billing: %s", found.xcom_value)
            return found.xcom_value
        # The same deadline as under the scheduler, read here (an invalid Variable fails the task).
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None)
        trigger = Call400WorkTrigger(
            **self._trigger_kwargs(),
            started_at=started.timestamp() if started else time.time(),
            wait_timeout=get_int(CALL400_SENSOR_TIMEOUT),
        )
        left = trigger.deadline - time.time()
        self.log.info("Nothing to do yet: waiting up to %.0f s (deferred)", max(left, 0))
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=max(left, 0) + _SAFETY_MARGIN_S,
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """End the wait from the trigger's event: the work (XCom), a skip at the deadline, or fail."""
        event = dict(event or {})
        status = event.pop("status", None)
        if status == "work":
            self.log.info("Work for call400_billing: %s", event)
            return event
        if status == "timeout":
            raise AirflowSkipException(
                f"Nothing to do: no 400 call message in queue {event.get('queue')!r} and nothing "
                f"left in the database before the deadline (Variable {CALL400_SENSOR_TIMEOUT.name} "
                "after the run's start)."
            )
        raise AirflowException(f"Waiting for work failed: {event}")
