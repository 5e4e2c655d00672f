"""
### call400_billing

Continuous pay-per-call billing of sublessor 400 numbers (one run at a time):

1. `wait_for_calls`: deferrable sensor on the queue of connection `call400_amqp`;
   the run is *skipped* when nothing arrives within Variable `call400_sensor_timeout`
   seconds (default 300), and the next run starts at once.
2. `intake`: drains the queue (at most Variable `call400_max_messages_per_run`)
   into `sublessor_call_log_201409`; invalid messages go to `call400_quarantine`.
   Each batch is committed before it is acknowledged: a crash loses nothing,
   a redelivery is absorbed by the unique `call_id`. Runs after a skipped sensor too.
3. `judge`: sets `filter_rule` (2 not connected, 3 too short, 4 repeat, 5 broker,
   1 valid) on every unjudged call; runs whatever happened upstream, so calls left
   unjudged by a failed run are recovered.

Variables: `filter_call_time_rule_threshold` (8), `filter_last_call_time_rule_threshold`
(86400). Quarantine: `python -m sublessor_billing.calls.quarantine list|replay|discard`.
See docs/intake.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, TriggerRule
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
    },
    tags=["sublessor_billing", "call400"],
    doc_md=__doc__,
) as dag:
    wait_for_calls = Call400QueueSensor(task_id="wait_for_calls")
    intake = Call400IntakeOperator(task_id="intake", trigger_rule=TriggerRule.NONE_FAILED)
    judge = Call400JudgeOperator(task_id="judge", trigger_rule=TriggerRule.ALL_DONE)

    wait_for_calls >> intake >> judge

    # ---- charge / offline: appended here, downstream of `judge` ----------------
    # judge >> charge >> offline
