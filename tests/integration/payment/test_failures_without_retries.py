"""Charge failures only a person can fix end the task without Airflow's retries.

A wrong key (1003) over many sublessors: one refused request each at most,
nothing charged, nothing decided, every call left pending for the pass after
the fix. A reused order id (1004) or an order id below the range, through the
``charge_shard`` task's steps: ``AirflowFailException`` (Airflow does not retry
it), after every other order was charged.
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import PRICE_FEN, offline_rows, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_airflow.operators.bill import Call400ChargeShardOperator
from sublessor_airflow.operators.charge import ChargeValidCallsOperator, allocate_orders
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import OrderIdsReused
from sublessor_billing.payments.outcomes import (
    ORDER_ID_MIN,
    OrderIdOutOfRange,
    PaymentConfigurationError,
)

pytestmark = pytest.mark.integration


def test_a_wrong_key_over_many_sublessors_charges_and_decides_nothing_until_fixed(
    billing_env, user_prop_target, payment_center, seed_calls, airflow_connections
):
    right = json.loads(billing_env["AIRFLOW_CONN_PAYMENT_API"])
    airflow_connections("payment_api", {**right, "password": "not-the-key"})
    funded = (31, 32, 33, 34)
    for sub in funded:
        payment_center.set_account(sub, 10 * PRICE_FEN)
        seed_calls(sub, 2)
    payment_center.set_account(36, PRICE_FEN)  # would run dry: a decision once charged
    seed_calls(36, 2)
    seed_calls(35, 2)  # no account: 1002 once charged, a decision
    task = ChargeValidCallsOperator(task_id="charge_valid_calls", workers=8)

    with pytest.raises(AirflowFailException, match="Admin -> Connections -> payment_api") as failed:
        task.execute({})

    assert isinstance(failed.value.__cause__, PaymentConfigurationError)
    assert "code 1003" in str(failed.value)
    rows = payment_rows(user_prop_target).values()
    assert len(rows) == 12 and {r["status"] for r in rows} == {"pending"}
    assert payment_center.ledger == {} and payment_center.full_state()["orders"] == 0
    # a 1003 is not retried: at most one request per sublessor, its later orders not sent
    assert all(r["attempts"] <= 1 for r in rows)
    assert sum(r["attempts"] for r in rows) == payment_center.request_counts["/trade/charge"]
    refused = [r for r in rows if r["attempts"] == 1]
    assert refused and {r["last_error"] for r in refused} == {
        "1003 bad signature: app id / key wrong"
    }
    assert offline_rows(user_prop_target) == [], "a refused signature says nothing of an account"

    airflow_connections("payment_api", right)  # the person on call fixes the key
    result = task.execute({})

    assert (result["success"], result["insufficient"], result["failed"]) == (9, 1, 2)
    rows = payment_rows(user_prop_target).values()
    assert payment_center.ledger == {r["id"]: 1 for r in rows if r["status"] == "success"}
    assert all(payment_center.orders[r["id"]]["amount"] == r["amount"] for r in rows)
    for sub in funded:
        assert payment_center.balance(sub) == 8 * PRICE_FEN
    assert sorted(e["sublessor_id"] for e in offline_rows(user_prop_target)) == [35, 36]


def reused_first_order_id(target, seed_calls) -> tuple[type[Exception], list[str]]:
    """Someone else already used our first order id (a restored database): 1004."""
    PaymentApiHook().charge(order_id=ORDER_ID_MIN, user_id=8, amount=1, subject="elsewhere")
    seed_calls(7, 1)  # the first call: order id ORDER_ID_MIN
    return OrderIdsReused, seed_calls(8, 2)


def order_id_below_the_range(target, seed_calls) -> tuple[type[Exception], list[str]]:
    """A pending row inserted by hand below 820000000000: held back, never sent."""
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount, "
                "subject, status) VALUES (77, 'by-hand', 9, 4000, '400 call by-hand', 'pending')"
            )
        conn.commit()
    finally:
        conn.close()
    return OrderIdOutOfRange, seed_calls(8, 2) + seed_calls(9, 1)


@pytest.mark.parametrize("make_bad_order", [reused_first_order_id, order_id_below_the_range])
def test_an_order_id_error_fails_the_charge_shard_task_without_retries(
    billing_env, user_prop_target, payment_center, seed_calls, make_bad_order
):
    for sub in (7, 8, 9):
        payment_center.set_account(sub, 10 * PRICE_FEN)
    error, charged = make_bad_order(user_prop_target, seed_calls)
    allocate_orders()  # what bill does before the shards
    shard = Call400ChargeShardOperator(
        task_id="charge_shard", shard={"index": 0, "count": 1}, charge_workers=4
    )

    for _ in range(2):  # a second try fails the same way: nothing a retry could fix
        with pytest.raises(AirflowFailException, match="a person must act first") as failed:
            shard.execute({})
        # AirflowFailException itself: Airflow fails the task instance without retrying it
        assert type(failed.value) is AirflowFailException
        assert "[charge] AirflowFailException" in str(failed.value)
        step_error = failed.value.__cause__
        assert type(step_error) is AirflowFailException
        assert isinstance(step_error.__cause__, error)
        assert "Then clear this task." in str(step_error)

    rows = payment_rows(user_prop_target)
    assert [rows[c]["status"] for c in charged] == ["success"] * len(charged)
    assert payment_center.full_state()["double_charged"] == []
    assert payment_center.balance(7) == 10 * PRICE_FEN, "the reused id charged nothing"
