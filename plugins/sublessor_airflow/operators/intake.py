"""call400_billing's first steps: take the queued calls in, then judge them (functions and operators)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from sublessor_airflow.hooks.amqp import Call400AmqpHook
from sublessor_airflow.operators.base import UserPropDbOperator
from sublessor_airflow.variables import get_int
from sublessor_billing import config
from sublessor_billing.calls.intake import DEFAULT_BATCH_SIZE, IntakeResult, drain
from sublessor_billing.calls.judge import judge_pending

if TYPE_CHECKING:
    from airflow.sdk import Context


class CallsHeld(AirflowFailException):
    """The judge held calls it could not judge: a person must look (no retry); ``result`` is its counts."""

    def __init__(self, result: dict[str, int]) -> None:
        super().__init__(
            f"{result['held']} calls could not be judged and are held (the log above names "
            f"them; {result['judged']} others were judged; {result['held_total']} held in "
            "all). A held call is neither judged nor charged until a retry judges it (calls "
            "the judge failed on) or an operator fixes its row and releases it: "
            "python -m sublessor_billing.calls.quarantine held / release ID (docs/intake.md)."
        )
        self.result = result


def take_in(
    *,
    amqp_conn_id: str = config.CALL400_AMQP,
    user_prop_conn_id: str = config.USER_PROP_DB,
    batch_size: int = DEFAULT_BATCH_SIZE,
    only_if_queued: bool = False,
    idle_seconds: float = 1.0,
) -> dict[str, int]:
    """Drain the queue into the call log (Variable ``call400_max_messages_per_run`` at most).

    The drain ends once the queue stayed empty ``idle_seconds``. With
    ``only_if_queued``, an empty queue is not waited on (a pass started for work
    in the database): the topology is declared and nothing is consumed.
    """
    from sublessor_airflow.hooks.mysql import user_prop_db

    cap = get_int(config.CALL400_MAX_MESSAGES_PER_RUN)
    short = get_int(config.FILTER_CALL_TIME_RULE_THRESHOLD)
    hook = Call400AmqpHook(amqp_conn_id)
    try:
        hook.ensure_topology()
        if only_if_queued and hook.message_count() == 0:
            return IntakeResult().as_dict()
        with closing(user_prop_db(user_prop_conn_id)) as db:
            result = drain(
                hook.channel(),
                hook.settings.queue,
                db,
                max_messages=cap,
                batch_size=batch_size,
                short_threshold=short,
                idle_seconds=idle_seconds,
            )
    finally:
        # Closing hands any delivery not yet acknowledged back to the queue.
        hook.close()
    return result.as_dict()


def judge(
    *, user_prop_conn_id: str = config.USER_PROP_DB, lock_timeout: int = 300
) -> dict[str, int]:
    """Give every unjudged call its rule; ``CallsHeld`` (carrying the counts) when calls were held."""
    from sublessor_airflow.hooks.mysql import user_prop_db

    short = get_int(config.FILTER_CALL_TIME_RULE_THRESHOLD)
    window = get_int(config.FILTER_LAST_CALL_TIME_RULE_THRESHOLD)
    with closing(user_prop_db(user_prop_conn_id)) as db:
        result = judge_pending(
            db, short_threshold=short, repeat_window=window, lock_timeout=lock_timeout
        )
    if result["held"]:
        raise CallsHeld(result)
    return result


class QueueIntake(UserPropDbOperator):
    """Base: an operator that takes the 400 call queue in (``take_in``).

    :param amqp_conn_id: the connection of the call queue (templated).
    :param batch_size: messages committed, then acknowledged, at a time.
    """

    template_fields: Sequence[str] = ("amqp_conn_id", *UserPropDbOperator.template_fields)

    def __init__(
        self,
        *,
        amqp_conn_id: str = config.CALL400_AMQP,
        batch_size: int = DEFAULT_BATCH_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.amqp_conn_id = amqp_conn_id
        self.batch_size = batch_size


class Call400IntakeOperator(QueueIntake):
    """Drain the 400 call queue into the call log; return received/logged/duplicates/quarantined.

    Takes at most Variable ``call400_max_messages_per_run`` messages. Every batch is
    committed before it is acknowledged, so a failed or retried run loses and
    duplicates nothing.
    """

    def execute(self, context: Context) -> dict[str, int]:
        return take_in(
            amqp_conn_id=self.amqp_conn_id,
            user_prop_conn_id=self.user_prop_conn_id,
            batch_size=self.batch_size,
        )


class Call400JudgeOperator(UserPropDbOperator):
    """Give every unjudged call (filter_rule 0) its rule; return how many got each rule.

    Thresholds come from Variables ``filter_call_time_rule_threshold`` and
    ``filter_last_call_time_rule_threshold``. Judges are serialized by a named
    lock in the database, so a manual and a scheduled run never judge together.
    A call that cannot be judged is held and the others are judged; the task then
    fails without retrying (the run is not green while a call it took is neither
    judged nor charged). Every run's result (XCom ``return_value``, pushed also
    when the task fails) carries ``held_total``, and the log names the oldest held
    calls; calls the judge failed on are retried by later runs (calls.held).

    :param lock_timeout: seconds to wait for the judges' named lock.
    """

    def __init__(self, *, lock_timeout: int = 300, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock_timeout = lock_timeout

    def execute(self, context: Context) -> dict[str, int]:
        try:
            return judge(user_prop_conn_id=self.user_prop_conn_id, lock_timeout=self.lock_timeout)
        except CallsHeld as held:
            if context.get("ti") is not None:  # the result, for alerting, even though we fail
                context["ti"].xcom_push(key="return_value", value=held.result)
            raise
