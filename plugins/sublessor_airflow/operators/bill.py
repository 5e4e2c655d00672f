"""call400_billing's pass: take in, judge, charge, take offline, in that order.

``bill`` runs the steps in one worker process instead of four (each task costs a
process start and a scheduling hop, most of a small run's time). Each step keeps
its meaning: it runs whatever the steps before it did (``sublessor_billing.steps``),
so a failed intake does not stop charging what earlier runs left pending; the task
fails at the end when any step failed, every step's result in XCom either way
(key ``intake``, ``judge``, ``charge``, ``offline``).

Charging spread over workers (Variable ``call400_charge_shards``, n): with n = 1
(the default) ``bill`` charges and delivers the offline decisions itself and
returns ``[]``, so the mapped ``charge_shard`` task expands to nothing (skipped,
no process). With n >= 2 ``bill`` takes in, judges and allocates the orders
(XCom ``allocate``), then returns one ``{"index": i, "count": n}`` per shard:
``charge_shard[i]`` settles the pending orders of the sublessors with
``sublessor_id % n == i`` and delivers their offline decisions, each shard a
task of its own that Airflow retries on its own. The count travels in the XCom,
so every shard of a run uses the same one whatever the Variable says meanwhile.
When a step of ``bill`` failed, the shards cannot start (a failed task expands
nothing): ``bill`` then charges and delivers every shard itself before failing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sublessor_airflow.assets import SUBLESSOR_PAYMENTS
from sublessor_airflow.operators.base import UserPropDbOperator
from sublessor_airflow.operators.charge import (
    allocate_orders,
    charge,
    pass_deadline_s,
    take_offline,
)
from sublessor_airflow.operators.intake import QueueIntake, judge, take_in
from sublessor_billing import config
from sublessor_billing.config import SettingError
from sublessor_billing.payments.store import ALL, Shard
from sublessor_billing.steps import Step, StepOutcome, failure_message, run_steps

if TYPE_CHECKING:
    from airflow.sdk import Context


# The drain ends once the queue stayed empty this long: a run costs seconds anyway, and
# what arrives later starts the next run at once.
IDLE_SECONDS = 0.25


class BillingStepsFailed(AirflowException):
    """A step failed in a way a retry of the task may fix (Airflow retries it)."""


def charge_shard_count() -> int:
    """Variable ``call400_charge_shards`` (1 to 16); refused without retries otherwise."""
    from sublessor_airflow.variables import get_text

    try:
        return config.parse_int_setting(
            config.CALL400_CHARGE_SHARDS, get_text(config.CALL400_CHARGE_SHARDS.name)
        )
    except SettingError as exc:
        raise AirflowFailException(
            f"{exc} Meanwhile each run charges every sublessor in its bill task (one shard), "
            "then fails."
        ) from exc


def finish(context: Context, outcomes: list[StepOutcome]) -> None:
    """Push every step's result under its name; raise when any failed.

    Without retries (``AirflowFailException``) when a step says a person must act
    first; otherwise ``BillingStepsFailed``, which Airflow retries.
    """
    ti = context.get("ti")
    if ti is not None:
        for outcome in outcomes:
            ti.xcom_push(key=outcome.name, value=outcome.as_dict())
    message = failure_message(outcomes)
    if not message:
        return
    first = next(o.error for o in outcomes if not o.ok)
    if any(isinstance(o.error, AirflowFailException) for o in outcomes):
        raise AirflowFailException(message + " Not retried: a person must act first.") from first
    raise BillingStepsFailed(message) from first


class _MoneySteps(UserPropDbOperator):
    """What ``bill`` and ``charge_shard`` share: the connections and the charge / offline steps.

    :param payment_conn_id: the payment center's connection (templated).
    :param listing_conn_id: the listing service's connection (templated).
    :param charge_workers: charge requests in flight at once.
    :param offline_workers: offline decisions sent at once.
    """

    template_fields: Sequence[str] = (
        *UserPropDbOperator.template_fields,
        "payment_conn_id",
        "listing_conn_id",
    )

    def __init__(
        self,
        *,
        payment_conn_id: str = config.PAYMENT_API,
        listing_conn_id: str = config.LISTING_API,
        charge_workers: int = 64,
        offline_workers: int = 8,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [SUBLESSOR_PAYMENTS])
        super().__init__(**kwargs)
        self.payment_conn_id = payment_conn_id
        self.listing_conn_id = listing_conn_id
        self.charge_workers = charge_workers
        self.offline_workers = offline_workers

    def time_left(self, started: float) -> float | None:
        """What is left of the pass deadline (90% of execution_timeout) since ``started``
        (``time.monotonic()`` at the task's start): the steps share it. None: unbounded."""
        deadline = pass_deadline_s(self.execution_timeout)
        return None if deadline is None else max(1.0, deadline - (time.monotonic() - started))

    def money_steps(self, shard: Shard, *, allocate: bool, started: float) -> list[Step]:
        """The charge and offline steps of ``shard``; the charge step gets ``time_left``."""

        def charge_step() -> dict[str, Any]:
            return charge(
                payment_conn_id=self.payment_conn_id, user_prop_conn_id=self.user_prop_conn_id,
                workers=self.charge_workers, deadline_s=self.time_left(started), shard=shard,
                allocate=allocate,
            )  # fmt: skip

        def offline_step() -> dict[str, Any]:
            return take_offline(
                listing_conn_id=self.listing_conn_id, user_prop_conn_id=self.user_prop_conn_id,
                workers=self.offline_workers, shard=shard,
            )  # fmt: skip

        return [("charge", charge_step), ("offline", offline_step)]


class Call400BillOperator(_MoneySteps, QueueIntake):
    """Take in, judge, then charge and take offline (or hand those to the shards); fail at the end.

    A step failing in a way only a person can fix (calls held by the judge, a
    wrong key, reused or out-of-range order ids, Variable ``call400_charge_shards``
    out of range) fails the task without retries, whatever the other steps did;
    otherwise a failed step (charges still pending after the in-pass retries, the
    broker or a service down) lets Airflow retry the task, each try running every
    step again (all of them are safe to repeat). Returns the shards to charge.
    """

    template_fields: Sequence[str] = ("amqp_conn_id", *_MoneySteps.template_fields)

    def execute(self, context: Context) -> list[dict[str, int]]:
        started = time.monotonic()
        outcomes: list[StepOutcome] = []
        try:
            count = charge_shard_count()
        except AirflowFailException as exc:  # the pass still runs, on one shard
            count = 1
            outcomes.append(StepOutcome("shards", 0.0, None, exc))
        intake_and_judge: list[Step] = [
            ("intake", lambda: take_in(
                amqp_conn_id=self.amqp_conn_id, user_prop_conn_id=self.user_prop_conn_id,
                batch_size=self.batch_size, only_if_queued=True, idle_seconds=IDLE_SECONDS,
            )),
            ("judge", lambda: judge(user_prop_conn_id=self.user_prop_conn_id)),
        ]  # fmt: skip
        if count == 1:
            outcomes += run_steps(
                [*intake_and_judge, *self.money_steps(ALL, allocate=True, started=started)]
            )
        else:
            allocate = ("allocate", lambda: allocate_orders(
                user_prop_conn_id=self.user_prop_conn_id, deadline_s=self.time_left(started),
            ))  # fmt: skip
            outcomes += run_steps([*intake_and_judge, allocate])
            if not all(o.ok for o in outcomes):
                # The shards will not run after a failed bill: charge and deliver them all here.
                self.log.warning("A step failed: charging every shard in this task instead")
                outcomes += run_steps(self.money_steps(ALL, allocate=False, started=started))
        finish(context, outcomes)
        return [{"index": i, "count": count} for i in range(count)] if count > 1 else []


class Call400ChargeShardOperator(_MoneySteps):
    """Settle the pending orders of one shard of sublessors and deliver their offline decisions.

    ``shard``: ``{"index": i, "count": n}`` from ``bill`` (mapped, one task per
    shard). Fails at the end like ``bill`` when a step failed; a retry settles the
    same shard again (same order ids, same decisions).
    """

    def __init__(self, *, shard: Mapping[str, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard

    def execute(self, context: Context) -> None:
        started = time.monotonic()
        shard = Shard(int(self.shard["index"]), int(self.shard["count"]))
        self.log.info("Charging %s: sublessor_id %% %s == %s", shard, shard.count, shard.index)
        finish(context, run_steps(self.money_steps(shard, allocate=False, started=started)))
