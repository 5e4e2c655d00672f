"""Failures that must fail the charge task loudly: reused order ids, a crashing worker, ids out of range."""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, OrderIdsReused, charge_valid_calls
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, OrderIdOutOfRange

pytestmark = pytest.mark.integration


def run_charging(target, hook=None):
    hook = hook or PaymentApiHook(timeout_ms=2000)
    conn = connect(target)
    try:
        return charge_valid_calls(conn, hook, price_fen=PRICE_FEN, workers=4, flush_seconds=0.05)
    finally:
        conn.close()
        hook.close()


def execute(target, sql):
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        conn.commit()
    finally:
        conn.close()


def test_reused_order_id_is_recorded_failed_and_fails_every_run_until_checked(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(7, 10 * PRICE_FEN)
    payment_center.set_account(8, 10 * PRICE_FEN)
    # someone else already used our first order id (e.g. before a database restore)
    PaymentApiHook().charge(order_id=ORDER_ID_MIN, user_id=8, amount=1, subject="elsewhere")
    reused = seed_calls(7, 1)
    others = seed_calls(8, 2)

    with pytest.raises(OrderIdsReused) as raised:
        run_charging(user_prop_target)
    assert f"order {ORDER_ID_MIN} (sublessor 7)" in str(raised.value)
    assert "AUTO_INCREMENT" in str(raised.value)
    rows = payment_rows(user_prop_target)
    assert rows[reused[0]]["status"] == "failed" and rows[reused[0]]["result_code"] == 1004
    assert [rows[c]["status"] for c in others] == ["success", "success"]
    assert payment_center.balance(7) == 10 * PRICE_FEN

    with pytest.raises(OrderIdsReused):  # a retry does not hide it
        run_charging(user_prop_target)
    execute(
        user_prop_target,
        f"UPDATE sublessor_call_payment_log_201409 SET last_error = NULL WHERE id = {ORDER_ID_MIN}",
    )
    assert run_charging(user_prop_target).counts["failed"] == 0


class CrashingClient:
    """The real hook, with an unexpected (non-UnknownOutcome) error for one sublessor's orders."""

    def __init__(self, hook, sublessor_id):
        self.hook, self.sublessor_id = hook, sublessor_id

    def describe(self, endpoint):
        return self.hook.describe(endpoint)

    def charge(self, **fields):
        if fields["user_id"] == self.sublessor_id:
            raise KeyError("balance")
        return self.hook.charge(**fields)

    def close(self):
        self.hook.close()


def test_unexpected_worker_error_keeps_rows_pending_and_fails_the_task(
    billing_env, user_prop_target, payment_center, seed_calls
):
    for sub in (1, 2, 3):
        payment_center.set_account(sub, 10 * PRICE_FEN)
        seed_calls(sub, 2)

    with pytest.raises(ChargesPending) as raised:
        run_charging(user_prop_target, CrashingClient(PaymentApiHook(timeout_ms=2000), 2))
    rows = payment_rows(user_prop_target).values()
    pending = sorted(r["id"] for r in rows if r["status"] == "pending")
    assert [r["sublessor_id"] for r in rows if r["status"] == "pending"] == [2, 2]
    assert raised.value.report.as_dict()["pending_order_ids"] == pending
    assert "unexpected KeyError" in str(raised.value)
    assert sorted(r["sublessor_id"] for r in rows if r["status"] == "success") == [1, 1, 3, 3]

    assert run_charging(user_prop_target).counts["success"] == 2
    assert payment_center.full_state()["double_charged"] == []


def test_order_ids_below_the_range_are_never_sent(
    billing_env, user_prop_target, payment_center, seed_calls
):
    payment_center.set_account(5, 10 * PRICE_FEN)
    # what MySQL 5.7 does to an empty table's counter on restart
    execute(user_prop_target, "ALTER TABLE sublessor_call_payment_log_201409 AUTO_INCREMENT = 1000")
    seed_calls(5, 2)
    with pytest.raises(OrderIdOutOfRange) as raised:
        run_charging(user_prop_target)
    assert "1000, 1001" in str(raised.value)
    assert f"AUTO_INCREMENT = {ORDER_ID_MIN}" in str(raised.value)
    assert payment_center.full_state()["orders"] == 0
    assert {r["status"] for r in payment_rows(user_prop_target).values()} == {"pending"}
    with pytest.raises(OrderIdOutOfRange, match="999"):
        PaymentApiHook().charge(order_id=999, user_id=5, amount=PRICE_FEN, subject="x")
    assert payment_center.full_state()["orders"] == 0


def test_an_answer_the_payment_log_cannot_hold_does_not_stop_its_batch(
    user_prop_target, seed_calls
):
    """A balance beyond BIGINT or a message with a lone surrogate, recorded with normal answers."""
    from sublessor_billing.payments import store
    from sublessor_billing.payments.outcomes import classify_charge

    seed_calls(61, 1)
    seed_calls(62, 1)
    seed_calls(63, 1)
    conn = connect(user_prop_target)
    try:
        store.allocate_orders(conn, PRICE_FEN)
        odd, frozen, normal = store.load_pending(conn)
        batch = [
            classify_charge(odd, {"code": 0, "balance": "99999999999999999999"}),
            classify_charge(frozen, {"code": 1002, "message": "frozen \ud800"}),
            classify_charge(normal, {"code": 0, "balance": 5 * PRICE_FEN}),
        ]
        settled, _ = store.record_outcomes(conn, batch, price_fen=PRICE_FEN, decided=set())
    finally:
        conn.close()
    assert len(settled) == 3
    rows = {r["sublessor_id"]: r for r in payment_rows(user_prop_target).values()}
    assert [rows[s]["status"] for s in (61, 62, 63)] == ["success", "failed", "success"]
    assert rows[61]["balance_after"] is None and rows[63]["balance_after"] == 5 * PRICE_FEN
