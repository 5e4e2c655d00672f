"""What a pending row holds is what is sent, and what it counts survives until it settles.

The amount is stored when the order is allocated and every request of that
order id sends it, whatever Variable payment_price_per_call says by then (a
re-sent order with another amount would be refused with 1004, docs/payments.md:
"Never change id, amount or subject of a pending row"). ``attempts`` counts
every request sent for the row, across passes; ``last_error`` says why the row
is still pending and is NULL once it settles.
"""

from __future__ import annotations

from contextlib import closing

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_airflow.operators.charge import ChargeValidCallsOperator, allocate_orders
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls
from sublessor_billing.payments.sending import RETRY
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration

NEW_PRICE_FEN = 5000


def charge_task():
    return ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)


def test_an_order_is_sent_and_recorded_with_the_amount_stored_when_it_was_allocated(
    billing_env, user_prop_target, payment_center, seed_calls, airflow_variables
):
    for sub in (1, 2, 3):
        payment_center.set_account(sub, 100 * PRICE_FEN)
    lost = seed_calls(1, 2)  # the first is charged, its answers lost: pending at 40 yuan
    seed_calls(2, 1)
    payment_center.add_fault(
        Fault("error_after", path="/trade/charge", match={"user_id": 1}, times=RETRY.attempts)
    )
    with pytest.raises(ChargesPending):
        charge_task().execute({})
    allocated = seed_calls(3, 1)
    assert allocate_orders()["allocated"] == 1  # pending at 40 yuan, never sent

    airflow_variables("payment_price_per_call", NEW_PRICE_FEN // 100)  # the price goes up
    fresh = seed_calls(3, 1)
    payment_center.clear_faults()
    result = charge_task().execute({})

    rows = payment_rows(user_prop_target)
    old = [*lost, *allocated]
    assert [rows[c]["amount"] for c in old] == [PRICE_FEN] * 3
    assert rows[fresh[0]]["amount"] == NEW_PRICE_FEN, "allocated now: the new price"
    assert {r["status"] for r in rows.values()} == {"success"}
    assert all(r["result_code"] != 1004 for r in rows.values())
    # the payment center was sent each order's stored amount, and charged it once
    assert {oid: o["amount"] for oid, o in payment_center.orders.items()} == {
        r["id"]: r["amount"] for r in rows.values()
    }
    assert payment_center.ledger == {r["id"]: 1 for r in rows.values()}
    assert result["charged_fen"] == 3 * PRICE_FEN + NEW_PRICE_FEN
    assert payment_center.balance(1) == 98 * PRICE_FEN
    assert payment_center.balance(3) == 99 * PRICE_FEN - NEW_PRICE_FEN


def pending_details(target) -> dict[str, tuple]:
    """call_id -> (status, attempts, last_error, sent_at is set)."""
    with closing(connect(target)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT call_id, status, attempts, last_error, sent_at IS NOT NULL "
            "FROM sublessor_call_payment_log_201409"
        )
        return {r[0]: (r[1], r[2], r[3], bool(r[4])) for r in cur.fetchall()}


def run_pass(target):
    # 2 s: never reached by a normal answer, even on a loaded machine; the held ones wait 5 s.
    client = PaymentApiHook(timeout_ms=2000).get_async_conn()
    with closing(connect(target)) as conn:
        return charge_valid_calls(conn, client, price_fen=PRICE_FEN, workers=4, flush_seconds=0.05)


def test_attempts_add_up_over_passes_and_last_error_is_cleared_when_the_order_settles(
    billing_env, user_prop_target, payment_center, seed_calls
):
    for sub in (1, 2, 3):
        payment_center.set_account(sub, 100 * PRICE_FEN)
    late = seed_calls(1, 2)  # the money moves, the answer comes after the deadline
    refused = seed_calls(2, 2)  # HTTP 500 before anything moved
    (plain,) = seed_calls(3, 1)
    every_try = RETRY.attempts  # each request of the pass, then the faults stop
    payment_center.add_fault(
        Fault("delay_after", path="/trade/charge", seconds=5, match={"user_id": 1}, times=every_try)
    )
    payment_center.add_fault(
        Fault("error_before", path="/trade/charge", match={"user_id": 2}, times=every_try)
    )

    with pytest.raises(ChargesPending):
        run_pass(user_prop_target)

    rows = pending_details(user_prop_target)
    order = {c: r["id"] for c, r in payment_rows(user_prop_target).items()}
    status, attempts, error, sent = rows[late[0]]
    assert (status, attempts, sent) == ("pending", RETRY.attempts, True)
    assert error.startswith("no complete answer within 2000 ms from connection 'payment_api'")
    status, attempts, error, sent = rows[refused[0]]
    assert (status, attempts, sent) == ("pending", RETRY.attempts, True)
    assert error.startswith("HTTP 500 from connection 'payment_api'")
    for first, second in (late, refused):
        why = f"not sent: order {order[first]} of the same sublessor has no known outcome yet"
        assert rows[second] == ("pending", 0, why, False)
    assert rows[plain] == ("success", 1, None, True)
    assert payment_center.ledger == {order[late[0]]: 1, order[plain]: 1}

    report = run_pass(user_prop_target)

    rows = pending_details(user_prop_target)
    assert rows[late[0]] == rows[refused[0]] == ("success", RETRY.attempts + 1, None, True)
    assert rows[late[1]] == rows[refused[1]] == ("success", 1, None, True)
    assert rows[plain] == ("success", 1, None, True)
    assert report.retried == 0 and report.counts["success"] == 4
    assert sum(r[1] for r in rows.values()) == payment_center.request_counts["/trade/charge"]
    assert payment_center.ledger == {oid: 1 for oid in order.values()}
