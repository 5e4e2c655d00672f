"""
### call400_billing

Continuous pay-per-call billing of sublessor 400 numbers (one run at a time):

1. `wait_for_work`: waits, in the triggerer (no worker), until there is work:
   messages in the queue of connection `call400_amqp`, or in `user_prop_db`
   calls not judged yet (or set back to rule 0 by hand, or held with a retry
   due), valid calls without an order, orders pending or offline decisions
   undelivered (an order or decision a pass tried less than 30 s ago counts
   again after that; a decision a pass holds a claim on, once the claim lapses).
   Checks every second; its XCom says what it found. Checks that kept failing
   for 30 s count as work too (`check_failed`), so `bill` runs and says what fails. The run is *skipped* when there is none within Variable
   `call400_sensor_timeout` seconds (default 300) of its start; the next starts at once.
2. `bill`: one pass, four steps in order, each run whatever the steps before it did
   (each is also the recovery of what earlier runs left):
   - **intake** drains the queue (at most Variable `call400_max_messages_per_run`)
     into `sublessor_call_log_201409`, invalid messages into `call400_quarantine`;
     each batch committed before it is acknowledged. Not connected or too short
     calls (rules 2 and 3) are logged already judged.
   - **judge** sets `filter_rule` (2 not connected, 3 too short, 4 repeat,
     5 broker, 1 valid) on every unjudged call; a call it cannot judge is held.
   - **charge** gives every valid call one order id (from 820000000000, stored
     before the first request) and charges it through connection `payment_api`
     (Variable `payment_price_per_call` yuan, `payment_api_timeout` ms); an
     unknown outcome is sent again at once with the same order id, a few times.
   - **offline** sends the recorded "take all listings offline" decisions
     (refused charge, or balance below one call's price) to `listing_api`,
     each claimed before it is sent, so two passes never send one twice.

   The task fails at the end when any step failed; XCom `intake`, `judge`,
   `charge`, `offline` hold each step's counts (and error) either way. Airflow
   retries it, except when a person must act first (calls held, a wrong key,
   reused or out-of-range order ids, a valid call that cannot be given an
   order, Variable `call400_charge_shards` outside 1..16): then it fails at
   once, saying what to do.
3. `charge_shard`: the charging spread over workers. With Variable
   `call400_charge_shards` n = 1 (the default) it expands to nothing (skipped,
   no process): `bill` charged. With n >= 2, `bill` only allocates the orders
   after intake and judge (XCom `allocate`) and `charge_shard` runs n mapped
   tasks, one per shard: shard i charges the pending orders of the sublessors
   with `sublessor_id % n == i` (each sublessor's orders in order, in one shard)
   and delivers their offline decisions, retried on its own (same order ids).
   When a step of `bill` failed, `bill` charges every shard itself and the
   shards do not run. When to set n > 1: docs/executors.md.
4. `done`: failed when the wait or `bill` failed, success otherwise (also after
   a skipped wait). The run is failed when `done` or a `charge_shard` task
   failed (both are leaves), success otherwise (also with no shard task).

What a failed run means and what to do: docs/live_service.md.
Quarantine and held calls: `python -m sublessor_billing.calls.quarantine`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import TriggerRule, dag

from sublessor_airflow.dag_defaults import START_DATE, default_args
from sublessor_airflow.operators.bill import Call400BillOperator, Call400ChargeShardOperator
from sublessor_airflow.sensors.call400_work import Call400WorkSensor


@dag(
    dag_id="call400_billing",
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(
        retries=3, retry_delay=timedelta(seconds=20), execution_timeout=timedelta(hours=1)
    ),
    tags=["sublessor_billing", "call400"],
    doc_md=__doc__,
)
def call400_billing():
    wait_for_work = Call400WorkSensor(task_id="wait_for_work")
    # Recovery runs whatever happened upstream: a skipped or failed wait does not skip it.
    bill = Call400BillOperator(task_id="bill", trigger_rule=TriggerRule.ALL_DONE)
    # One task per shard that bill returns; none (skipped, no process) at the default of 1.
    # A leaf of its own: a failed shard fails the run. Downstream of it, done would only see
    # the skip of an empty expansion one scheduler loop later (a second per run).
    charge_shard = Call400ChargeShardOperator.partial(
        task_id="charge_shard",
        map_index_template="shard {{ task.shard['index'] }} of {{ task.shard['count'] }}",
    ).expand(shard=bill.output)
    # Failed when the wait or the pass failed, green when the wait was merely skipped.
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.NONE_FAILED)

    wait_for_work >> bill >> [charge_shard, done]
    wait_for_work >> done


call400_billing()
