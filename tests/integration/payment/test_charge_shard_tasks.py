"""call400_billing's charge_shard tasks on the real database and sandboxes, two shards.

``bill`` allocates (its ``allocate`` step), then each ``charge_shard`` task settles
the orders of its sublessors (``sublessor_id % 2``) and delivers their offline
decisions, nothing of the other shard's. A shard task killed while the payment
center holds an answer (money moved, nothing recorded) leaves only its own orders
pending; the work query still sees them, and its retry settles them with the same
order ids: every call charged exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import closing

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import PRICE_FEN, offline_rows, payment_rows
from support.waiting import wait_until

from sublessor_airflow.operators.bill import Call400ChargeShardOperator
from sublessor_airflow.operators.charge import allocate_orders
from sublessor_billing.db.connect import connect
from sublessor_billing.leftovers import find_leftovers
from sublessor_billing.sandbox.server import Fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

# Run one shard task in a process of its own, as a worker would (the test kills it).
CHILD = (
    "from sublessor_airflow.operators.bill import Call400ChargeShardOperator as Task; "
    "Task(task_id='charge_shard', shard={{'index': {index}, 'count': 2}}, charge_workers=4)"
    ".execute({{}})"
)


def shard_task(index: int) -> Call400ChargeShardOperator:
    shard = {"index": index, "count": 2}
    return Call400ChargeShardOperator(task_id="charge_shard", shard=shard, charge_workers=4)


def by_sublessor(target) -> dict[int, list[str]]:
    """Statuses of each sublessor's orders, in order id order."""
    rows = sorted(payment_rows(target).values(), key=lambda r: r["id"])
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row["sublessor_id"], []).append(row["status"])
    return found


def pending_decisions(target) -> set[int]:
    return {e["sublessor_id"] for e in offline_rows(target) if e["status"] == "pending"}


def test_each_shard_task_charges_and_takes_offline_only_its_sublessors_and_a_killed_one_is_retried(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
) -> None:
    # shard 0: sublessors 4 and 6; shard 1: 3 and 5. 3 and 6 run dry at their second call.
    for sub in (3, 6):
        payment_center.set_account(sub, PRICE_FEN + 100)
        listing_service.set_listings(sub, 2)
    for sub in (4, 5):
        payment_center.set_account(sub, 10 * PRICE_FEN)
    for sub in (3, 4, 5, 6):
        seed_calls(sub, 3)

    assert allocate_orders()["allocated"] == 12  # bill's allocate step: no request sent
    assert payment_center.full_state()["charges"] == 0

    result = shard_task(0).execute({})  # in this process: shard 0 only
    assert result is None
    assert by_sublessor(user_prop_target) == {
        3: ["pending"] * 3, 4: ["success"] * 3, 5: ["pending"] * 3,
        6: ["success", "insufficient", "insufficient"],
    }  # fmt: skip
    assert listing_service.offline_calls == {6: 1}  # its own decision delivered, nothing of 3

    # Shard 1 in a worker process, killed while the payment center holds sublessor 5's first
    # answer: the money moved, nothing was recorded.
    payment_center.add_fault(
        Fault("delay_after", path="/trade/charge", seconds=30, match={"user_id": 5}, times=1)
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(index=1)], env=dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(
            lambda: payment_center.balance(5) == 9 * PRICE_FEN,
            60,
            lambda: f"shard 1 to charge sublessor 5 (the child's exit code: {child.poll()})",
            interval=0.1,
        )
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    payment_center.clear_faults()
    assert by_sublessor(user_prop_target)[5][0] == "pending"  # charged, answer not recorded
    assert by_sublessor(user_prop_target)[4] == ["success"] * 3  # the other shard is untouched
    order_ids = {c: r["id"] for c, r in payment_rows(user_prop_target).items()}
    with closing(connect(user_prop_target)) as conn:
        assert find_leftovers(conn).pending_orders  # the next run's wait sees them

    shard_task(1).execute({})  # Airflow's retry of the killed shard
    assert by_sublessor(user_prop_target) == {
        3: ["success", "insufficient", "insufficient"], 4: ["success"] * 3,
        5: ["success"] * 3, 6: ["success", "insufficient", "insufficient"],
    }  # fmt: skip
    assert {c: r["id"] for c, r in payment_rows(user_prop_target).items()} == order_ids
    state = payment_center.full_state()
    assert state["double_charged"] == [] and state["charges"] == 8
    assert payment_center.balance(5) == 7 * PRICE_FEN
    assert listing_service.offline_calls == {3: 1, 6: 1} and not pending_decisions(user_prop_target)

    # A retry of a shard with nothing left sends nothing more.
    shard_task(0).execute({})
    assert payment_center.full_state()["charges"] == 8
    assert listing_service.offline_calls == {3: 1, 6: 1}


def test_a_shard_with_pending_orders_fails_alone_and_leaves_the_other_shards_work_committed(
    billing_env, user_prop_target, payment_center, listing_service, seed_calls
) -> None:
    for sub in (7, 8):
        payment_center.set_account(sub, 10 * PRICE_FEN)
        seed_calls(sub, 2)
    allocate_orders()
    # every answer for sublessor 7 (shard 1) lost after the money moved, in every attempt
    payment_center.add_fault(Fault("error_after", path="/trade/charge", match={"user_id": 7}))
    with pytest.raises(Exception, match="still pending") as failed:
        shard_task(1).execute({})
    assert "[charge] ChargesPending" in str(failed.value)
    shard_task(0).execute({})
    assert by_sublessor(user_prop_target) == {7: ["pending"] * 2, 8: ["success"] * 2}

    payment_center.clear_faults()
    shard_task(1).execute({})  # the retry
    assert by_sublessor(user_prop_target) == {7: ["success"] * 2, 8: ["success"] * 2}
    state = payment_center.full_state()
    assert state["double_charged"] == [] and state["charges"] == 4


def test_bills_allocate_step_fails_without_retries_on_a_call_that_cannot_be_given_an_order(
    billing_env, user_prop_target, payment_center, seed_calls
) -> None:
    for sub in (4, 5):
        payment_center.set_account(sub, 10 * PRICE_FEN)
        seed_calls(sub, 1)
    (zero,) = seed_calls(0, 1)  # sublessor 0 cannot be stored in the payment log
    with pytest.raises(AirflowFailException, match="cannot be given an order") as failed:
        allocate_orders()
    assert zero in str(failed.value)
    assert (failed.value.result["allocated"], failed.value.result["unallocatable_calls"]) == (2, 1)
    for index in (0, 1):  # what it allocated is charged (bill does it when a step failed)
        shard_task(index).execute({})
    assert by_sublessor(user_prop_target) == {4: ["success"], 5: ["success"]}
