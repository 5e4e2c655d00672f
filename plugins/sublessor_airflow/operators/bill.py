"""call400_billing's pass in one task: take in, judge, charge, take offline, in that order.

One worker process instead of four (each task costs a process start and a
scheduling hop, most of a small run's time). Each step keeps its meaning: it
runs whatever the steps before it did (``sublessor_billing.steps``), so a
failed intake does not stop charging what earlier runs left pending; the task
fails at the end when any step failed, every step's result in XCom either way
(key ``intake``, ``judge``, ``charge``, ``offline``; ``return_value`` holds all).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sublessor_airflow.assets import SUBLESSOR_PAYMENTS
from sublessor_airflow.operators.charge import charge, pass_deadline_s, take_offline
from sublessor_airflow.operators.intake import judge, take_in
from sublessor_billing import config
from sublessor_billing.calls.intake import DEFAULT_BATCH_SIZE
from sublessor_billing.steps import StepOutcome, failure_message, run_steps

if TYPE_CHECKING:
    from airflow.sdk import Context


# The drain ends once the queue stayed empty this long: a run costs seconds anyway, and
# what arrives later starts the next run at once.
IDLE_SECONDS = 0.25


class BillingStepsFailed(AirflowException):
    """A step failed in a way a retry of the task may fix (Airflow retries it)."""


class Call400BillOperator(BaseOperator):
    """Run the four steps of a billing pass in order; fail at the end when any failed.

    A step failing in a way only a person can fix (calls held by the judge, a
    wrong key, reused or out-of-range order ids) fails the task without retries,
    whatever the other steps did; otherwise a failed step (charges still pending
    after the in-pass retries, the broker or a service down) lets Airflow retry
    the task, each try running every step again (all of them are safe to repeat).
    """

    template_fields = ("amqp_conn_id", "user_prop_conn_id", "payment_conn_id", "listing_conn_id")

    def __init__(
        self,
        *,
        amqp_conn_id: str = config.CALL400_AMQP,
        user_prop_conn_id: str = config.USER_PROP_DB,
        payment_conn_id: str = config.PAYMENT_API,
        listing_conn_id: str = config.LISTING_API,
        batch_size: int = DEFAULT_BATCH_SIZE,
        charge_workers: int = 64,
        offline_workers: int = 8,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [SUBLESSOR_PAYMENTS])
        super().__init__(**kwargs)
        self.amqp_conn_id = amqp_conn_id
        self.user_prop_conn_id = user_prop_conn_id
        self.payment_conn_id = payment_conn_id
        self.listing_conn_id = listing_conn_id
        self.batch_size = batch_size
        self.charge_workers = charge_workers
        self.offline_workers = offline_workers

    def execute(self, context: Context) -> dict[str, Any]:
        started = time.monotonic()
        deadline = pass_deadline_s(self.execution_timeout)

        def charge_step() -> dict[str, Any]:
            # the sending deadline counts from the task's start: the steps share execution_timeout
            left = None if deadline is None else max(1.0, deadline - (time.monotonic() - started))
            return charge(
                payment_conn_id=self.payment_conn_id,
                user_prop_conn_id=self.user_prop_conn_id,
                workers=self.charge_workers,
                deadline_s=left,
            )

        outcomes = run_steps(
            [
                ("intake", lambda: take_in(
                    amqp_conn_id=self.amqp_conn_id, mysql_conn_id=self.user_prop_conn_id,
                    batch_size=self.batch_size, only_if_queued=True, idle_seconds=IDLE_SECONDS,
                )),
                ("judge", lambda: judge(mysql_conn_id=self.user_prop_conn_id)),
                ("charge", charge_step),
                ("offline", lambda: take_offline(
                    listing_conn_id=self.listing_conn_id, user_prop_conn_id=self.user_prop_conn_id,
                    workers=self.offline_workers,
                )),
            ]
        )  # fmt: skip
        results = {o.name: o.as_dict() for o in outcomes}
        self._push(context, outcomes, results)
        message = failure_message(outcomes)
        if not message:
            return results
        first = next(o.error for o in outcomes if not o.ok)
        if any(isinstance(o.error, AirflowFailException) for o in outcomes):
            raise AirflowFailException(
                message + " Not retried: a person must act first."
            ) from first
        raise BillingStepsFailed(message) from first

    @staticmethod
    def _push(context: Context, outcomes: list[StepOutcome], results: dict[str, Any]) -> None:
        """Every step's result under its name; all of them as ``return_value`` when failing too."""
        ti = context.get("ti")
        if ti is None:
            return
        for outcome in outcomes:
            ti.xcom_push(key=outcome.name, value=results[outcome.name])
        if any(not o.ok for o in outcomes):
            ti.xcom_push(key="return_value", value=results)
