"""Charging against the real MariaDB and the sandbox payment center, through the real hooks."""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, offline_rows, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, charge_valid_calls
from sublessor_billing.sandbox.server import Fault

pytestmark = pytest.mark.integration


def run_charging(target, *, timeout_ms=1000, workers=8):
    hook = PaymentApiHook(timeout_ms=timeout_ms)
    conn = connect(target)
    try:
        return charge_valid_calls(
            conn, hook, price_fen=PRICE_FEN, workers=workers, flush_seconds=0.05
        )
    finally:
        conn.close()
        hook.close()


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


def test_unknown_outcomes_stay_pending_then_settle_without_double_charge(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(1, 100 * PRICE_FEN)
    for sub in (2, 3, 4, 5):
        payment_center.set_account(sub, 100 * PRICE_FEN)
    seed_calls(1, 3)
    for sub in (2, 3, 4, 5):
        seed_calls(sub, 2)
    payment_center.add_fault(
        Fault("delay_before", path="/trade/charge", seconds=1.5, match={"user_id": 1}, times=1)
    )
    payment_center.add_fault(
        Fault("error_before", path="/trade/charge", match={"user_id": 2}, times=1)
    )
    payment_center.add_fault(
        Fault("error_after", path="/trade/charge", match={"user_id": 3}, times=1)
    )
    payment_center.add_fault(
        Fault("garbage_after", path="/trade/charge", match={"user_id": 4}, times=1)
    )
    payment_center.add_fault(
        Fault("drop_after", path="/trade/charge", match={"user_id": 5}, times=1)
    )

    with pytest.raises(ChargesPending) as raised:
        run_charging(user_prop_target, timeout_ms=500)
    rows = payment_rows(user_prop_target)
    pending = {r["id"] for r in rows.values() if r["status"] == "pending"}
    assert set(raised.value.report.as_dict()["pending_order_ids"]) == pending
    # each faulted sublessor stops at its first unknown order: its later calls wait, unsent
    assert sorted(r["sublessor_id"] for r in rows.values() if r["status"] == "pending") == [
        1,
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
    ]

    report = run_charging(user_prop_target, timeout_ms=5000)
    rows = payment_rows(user_prop_target)
    assert {r["status"] for r in rows.values()} == {"success"}
    assert report.counts["success"] == 11
    state = payment_center.full_state()
    assert state["double_charged"] == [] and state["charges"] == 11
    for sub in (1, 2, 3, 4, 5):
        expected = 100 * PRICE_FEN - PRICE_FEN * (3 if sub == 1 else 2)
        assert payment_center.balance(sub) == expected
