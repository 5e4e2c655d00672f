"""
### call400_billing

Continuous pay-per-call billing of sublessor 400 numbers (one run at a time):

1. `wait_for_calls`: deferrable sensor on the queue of connection `call400_amqp`;
   the run is *skipped* when nothing arrives within Variable `call400_sensor_timeout`
   seconds (default 300), and the next run starts at once.
2. `intake`: drains the queue (at most Variable `call400_max_messages_per_run`)
   into `sublessor_call_log_201409`; invalid messages go to `call400_quarantine`.
   Each batch is committed before it is acknowledged: a crash loses nothing,
   a redelivery is absorbed by the unique `call_id`. Calls that are not connected
   or too short (rules 2 and 3 need only the call) are logged already judged.
   Runs after a skipped sensor too.
3. `judge`: sets `filter_rule` (2 not connected, 3 too short, 4 repeat, 5 broker,
   1 valid) on every unjudged call; runs whatever happened upstream, so calls left
   unjudged by a failed run are recovered.
4. `charge`: gives every valid call one order id (from 820000000000, stored before
   the first request) and charges it through connection `payment_api`
   (Variable `payment_price_per_call` yuan, `payment_api_timeout` ms). An unknown
   outcome stays `pending`, the task fails, and the retry settles it with the same
   order id. A valid call that cannot be given an order fails the task (no
   retries) at the end of a pass that charged every other call: repair the row,
   or write it off with `order_allocated = 2`. Runs whatever happened upstream
   (recovery of pending charges).
5. `offline`: sends the recorded "take all listings offline" decisions (refused
   charge, or balance below one call's price) to connection `listing_api`,
   each claimed before it is sent, so two runs never send one twice (its
   request id is stored).
6. `done`: fails the run when any step above failed (they all run regardless,
   as recovery), so a charge left pending is a failed run, not a green one.

Variables: `filter_call_time_rule_threshold` (8), `filter_last_call_time_rule_threshold`
(86400). Quarantine: `python -m sublessor_billing.calls.quarantine list|replay|discard`.
See docs/intake.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, TriggerRule

from sublessor_airflow.alerts.notifier import BillingAlertNotifier
from sublessor_airflow.operators.charge import (
    ChargeValidCallsOperator,
    TakeListingsOfflineOperator,
)
from sublessor_airflow.operators.intake import Call400IntakeOperator, Call400JudgeOperator
from sublessor_airflow.sensors.call400_queue import Call400QueueSensor

with DAG(
    dag_id="call400_billing",
    schedule="@continuous",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=20),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": [BillingAlertNotifier()],
    },
    tags=["sublessor_billing", "call400"],
    doc_md=__doc__,
) as dag:
    wait_for_calls = Call400QueueSensor(task_id="wait_for_calls")
    intake = Call400IntakeOperator(task_id="intake", trigger_rule=TriggerRule.NONE_FAILED)
    judge = Call400JudgeOperator(task_id="judge", trigger_rule=TriggerRule.ALL_DONE)

    wait_for_calls >> intake >> judge

    charge = ChargeValidCallsOperator(task_id="charge", trigger_rule=TriggerRule.ALL_DONE)
    offline = TakeListingsOfflineOperator(task_id="offline", trigger_rule=TriggerRule.ALL_DONE)

    judge >> charge >> offline

    # The recovery tasks run whatever happened upstream (ALL_DONE), so the last of
    # them would hide an earlier failure: this leaf fails the run when any step failed
    # (a pending charge must fail the run, runtime.md "Draining"), and succeeds when
    # the sensor was merely skipped.
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED)
    [intake, judge, charge, offline] >> done
