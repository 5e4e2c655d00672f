"""Charging against the real MariaDB and the sandbox payment center, through the real hooks."""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, offline_rows, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls
from sublessor_billing.payments.sending import RETRY
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def run_charging(target, *, timeout_ms=1000, workers=8):
    client = PaymentApiHook(timeout_ms=timeout_ms).get_async_conn()
    conn = connect(target)
    try:
        return charge_valid_calls(
            conn, client, price_fen=PRICE_FEN, workers=workers, flush_seconds=0.05
        )
    finally:
        conn.close()


def test_charges_every_valid_call_once_in_call_order(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(7, 3 * PRICE_FEN + 100)
    payment_center.set_account(8, 10 * PRICE_FEN)
    calls7 = seed_calls(7, 5)
    seed_calls(8, 2)
    seed_calls(9, 1)  # no account: 1002
    seed_calls(7, 1, filter_rule=3)  # invalid: never charged

    report = run_charging(user_prop_target)

    rows = payment_rows(user_prop_target)
    assert len(rows) == 8
    assert [rows[c]["status"] for c in calls7] == ["success"] * 3 + ["insufficient"] * 2
    assert rows[calls7[2]]["balance_after"] == 100
    assert [r["status"] for r in rows.values() if r["sublessor_id"] == 9] == ["failed"]
    assert report.as_dict()["success"] == 5 and report.charged_fen == 5 * PRICE_FEN
    assert payment_center.balance(7) == 100 and payment_center.balance(8) == 8 * PRICE_FEN
    assert payment_center.full_state()["double_charged"] == []
    decisions = {(e["sublessor_id"], e["trigger_order_id"]) for e in offline_rows(user_prop_target)}
    assert decisions == {
        (7, rows[calls7[2]]["id"]),
        (9, rows[next(c for c, r in rows.items() if r["sublessor_id"] == 9)]["id"]),
    }


def test_transient_faults_are_absorbed_in_the_same_pass(
    billing_env, user_prop_target, payment_center, seed_calls
):
    for sub in (1, 2, 3, 4, 5, 6):
        payment_center.set_account(sub, 100 * PRICE_FEN)
    seed_calls(1, 3)
    for sub in (2, 3, 4, 5, 6):
        seed_calls(sub, 2)
    faults = [
        Fault("delay_before", path="/trade/charge", seconds=1.5, match={"user_id": 1}, times=1),
        Fault("error_before", path="/trade/charge", match={"user_id": 2}, times=1),
        Fault("error_after", path="/trade/charge", match={"user_id": 3}, times=1),
        Fault("garbage_after", path="/trade/charge", match={"user_id": 4}, times=1),
        Fault("drop_after", path="/trade/charge", match={"user_id": 5}, times=1),
        Fault("drip_after", path="/trade/charge", seconds=0.2, match={"user_id": 6}, times=1),
    ]
    for fault in faults:
        payment_center.add_fault(fault)

    report = run_charging(user_prop_target, timeout_ms=500)  # ONE pass, no ChargesPending

    assert [f.fired for f in faults] == [1] * 6
    rows = payment_rows(user_prop_target).values()
    assert {r["status"] for r in rows} == {"success"} and report.counts["success"] == 13
    first = {sub: min(r["id"] for r in rows if r["sublessor_id"] == sub) for sub in range(1, 7)}
    # each faulted first order was sent again with the same order id, once
    assert {r["id"]: r["attempts"] for r in rows if r["attempts"] != 1} == {
        oid: 2 for oid in first.values()
    }
    assert report.retried == 6 and all(r["last_error"] is None for r in rows)
    state = payment_center.full_state()
    assert state["double_charged"] == [] and state["charges"] == 13
    for sub in (1, 2, 3, 4, 5, 6):
        expected = 100 * PRICE_FEN - PRICE_FEN * (3 if sub == 1 else 2)
        assert payment_center.balance(sub) == expected


def test_two_percent_of_answers_lost_after_the_money_moved_all_settle_in_one_pass(
    billing_env, user_prop_target, payment_center, seed_calls
):
    sublessors, per_sublessor = 40, 25
    for sub in range(1, sublessors + 1):
        payment_center.set_account(sub, 1000 * PRICE_FEN)
        seed_calls(sub, per_sublessor)
    lost = payment_center.add_fault(Fault("error_after", path="/trade/charge", probability=0.02))

    report = run_charging(user_prop_target, workers=32)  # ONE pass, no ChargesPending

    rows = payment_rows(user_prop_target).values()
    assert lost.fired > 0
    assert {r["status"] for r in rows} == {"success"} and len(rows) == sublessors * per_sublessor
    # the sandbox's ledger: every order id charged exactly once, for its own amount
    assert payment_center.ledger == {r["id"]: 1 for r in rows}
    assert all(payment_center.orders[r["id"]]["amount"] == r["amount"] for r in rows)
    for sub in range(1, sublessors + 1):
        assert payment_center.balance(sub) == (1000 - per_sublessor) * PRICE_FEN
    # attempts on the rows count every request sent, retries included
    assert sum(r["attempts"] for r in rows) == payment_center.request_counts["/trade/charge"]
    assert report.retried == sum(1 for r in rows if r["attempts"] > 1) >= 1


def test_a_sublessor_whose_answers_are_always_lost_stays_pending_in_order(
    billing_env, user_prop_target, payment_center, seed_calls
):
    for sub in (1, 2, 3):
        payment_center.set_account(sub, 100 * PRICE_FEN)
    calls1 = seed_calls(1, 3)
    seed_calls(2, 2)
    seed_calls(3, 2)
    payment_center.add_fault(Fault("error_after", path="/trade/charge", match={"user_id": 1}))

    with pytest.raises(ChargesPending) as raised:
        run_charging(user_prop_target)

    rows = payment_rows(user_prop_target)
    first, second, third = (rows[c]["id"] for c in calls1)
    assert [rows[c]["status"] for c in calls1] == ["pending"] * 3
    assert [rows[c]["attempts"] for c in calls1] == [RETRY.attempts, 0, 0]
    assert rows[calls1[0]]["last_error"].startswith("HTTP 500 from connection 'payment_api'")
    assert rows[calls1[1]]["last_error"] == (
        f"not sent: order {first} of the same sublessor has no known outcome yet"
    )
    others = [r for r in rows.values() if r["sublessor_id"] != 1]
    assert {r["status"] for r in others} == {"success"} and len(others) == 4
    message = str(raised.value)
    assert f"order {first}: HTTP 500" in message and f"order {third}: not sent" in message
    assert f"after up to {RETRY.attempts} attempt(s)" in message
    assert "To do: check that the payment center" in message and "payment_api_timeout" in message
    assert raised.value.report.as_dict()["pending_order_ids"] == [first, second, third]
    assert payment_center.ledger.get(first) == 1  # the money moved once, the answer never came

    payment_center.clear_faults()
    report = run_charging(user_prop_target)
    assert report.counts["success"] == 3
    assert payment_center.full_state()["double_charged"] == []
    assert payment_center.balance(1) == 97 * PRICE_FEN
