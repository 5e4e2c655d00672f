"""Failures that must fail the charge task loudly: reused order ids, a crashing worker, ids out of range."""

from __future__ import annotations

import pytest
from payment_fixtures import PRICE_FEN, payment_rows
from support.clients import RaisingFor

from sublessor_airflow.hooks.signed_http import PaymentApiHook
from sublessor_billing.db.connect import connect
from sublessor_billing.payments.charging import ChargesPending, OrderIdsReused, charge_valid_calls
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, OrderIdOutOfRange

pytestmark = pytest.mark.integration


def run_charging(target, client=None):
    client = client or PaymentApiHook(timeout_ms=2000).get_async_conn()
    conn = connect(target)
    try:
        return charge_valid_calls(conn, client, price_fen=PRICE_FEN, workers=4, flush_seconds=0.05)
    finally:
        conn.close()


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


def test_unexpected_worker_error_keeps_rows_pending_and_fails_the_task(
    billing_env, user_prop_target, payment_center, seed_calls
):
    for sub in (1, 2, 3):
        payment_center.set_account(sub, 10 * PRICE_FEN)
        seed_calls(sub, 2)

    crashing = RaisingFor(
        PaymentApiHook(timeout_ms=2000).get_async_conn(), 2, "charge", KeyError("balance")
    )
    with pytest.raises(ChargesPending) as raised:
        run_charging(user_prop_target, crashing)
    assert crashing.calls == 1, "a bug of ours is not a transient fault: not retried"
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
    assert "release-held --yes" in str(raised.value) and "never lowers" in str(raised.value)
    assert payment_center.full_state()["orders"] == 0
    assert {r["status"] for r in payment_rows(user_prop_target).values()} == {"pending"}
    with pytest.raises(OrderIdOutOfRange, match="999"):
        PaymentApiHook().charge(order_id=999, user_id=5, amount=PRICE_FEN, subject="x")
    assert payment_center.full_state()["orders"] == 0


def test_a_hand_inserted_order_id_below_the_range_is_held_back_and_every_other_order_settled(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """One low id used to stop the whole pass before any request: now only that row waits."""
    for sub in (5, 6):
        payment_center.set_account(sub, 10 * PRICE_FEN)
    calls = seed_calls(5, 2) + seed_calls(6, 1)
    # a row inserted by hand, for a sublessor that also has calls to charge
    execute(
        user_prop_target,
        "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount, "
        "subject, status) VALUES (1000, 'by-hand', 5, 4000, '400 call by-hand', 'pending')",
    )
    with pytest.raises(OrderIdOutOfRange) as raised:
        run_charging(user_prop_target)
    assert raised.value.order_ids == [1000]
    assert "release-held --yes" in str(raised.value) and "never lowers" in str(raised.value)
    rows = payment_rows(user_prop_target)
    assert [rows[c]["status"] for c in calls] == ["success"] * 3
    assert (rows["by-hand"]["status"], rows["by-hand"]["attempts"]) == ("pending", 0)
    assert payment_center.full_state()["orders"] == 3, "the low id never reached the payment center"
    assert payment_center.balance(5) == 8 * PRICE_FEN

    with pytest.raises(OrderIdOutOfRange):  # every pass says so until someone repairs the row
        run_charging(user_prop_target)
    execute(user_prop_target, "DELETE FROM sublessor_call_payment_log_201409 WHERE id = 1000")
    assert run_charging(user_prop_target).as_dict()["held_out_of_range"] == 0


def test_unknown_outcomes_are_retried_before_a_low_order_id_fails_the_task(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """ChargesPending (Airflow retries it) comes first and names the held id too."""
    from sublessor_billing.sandbox.server import Fault

    payment_center.set_account(5, 10 * PRICE_FEN)
    (call,) = seed_calls(5, 1)
    execute(
        user_prop_target,
        "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount, "
        "subject, status) VALUES (1000, 'by-hand', 5, 4000, '400 call by-hand', 'pending')",
    )
    payment_center.add_fault(Fault("error_before", path="/trade/charge", times=4))
    with pytest.raises(
        ChargesPending, match=r"held back, never sent: 1 order id.*\(1000\)"
    ) as raised:
        run_charging(user_prop_target)
    assert raised.value.report.as_dict()["pending"] == 1  # the in-range order only
    with pytest.raises(OrderIdOutOfRange):
        run_charging(user_prop_target)
    assert payment_rows(user_prop_target)[call]["status"] == "success"


def test_the_operator_fails_on_a_low_order_id_after_charging_the_others(
    billing_env, user_prop_target, payment_center, seed_calls
):
    from airflow.sdk.exceptions import AirflowFailException

    from sublessor_airflow.operators.charge import ChargeValidCallsOperator

    payment_center.set_account(9, 10 * PRICE_FEN)
    (call,) = seed_calls(9, 1)
    execute(
        user_prop_target,
        "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount, "
        "subject, status) VALUES (77, 'by-hand', 9, 4000, '400 call by-hand', 'pending')",
    )
    with pytest.raises(AirflowFailException, match="77.*Then clear this task") as raised:
        ChargeValidCallsOperator(task_id="charge", workers=2).execute({})
    assert isinstance(raised.value.__cause__, OrderIdOutOfRange)
    assert payment_rows(user_prop_target)[call]["status"] == "success"


def test_an_answer_the_payment_log_cannot_hold_does_not_stop_its_batch(
    user_prop_target, seed_calls
):
    """A balance beyond BIGINT or a message with a lone surrogate, recorded with normal answers."""
    from sublessor_billing.payments import allocation, store
    from sublessor_billing.payments.outcomes import classify_charge

    seed_calls(61, 1)
    seed_calls(62, 1)
    seed_calls(63, 1)
    conn = connect(user_prop_target)
    try:
        allocation.allocate_orders(conn, PRICE_FEN)
        odd, frozen, normal = store.load_pending(conn)
        batch = [
            classify_charge(odd, {"code": 0, "balance": "99999999999999999999"}),
            classify_charge(frozen, {"code": 1002, "message": "frozen \ud800"}),
            classify_charge(normal, {"code": 0, "balance": 5 * PRICE_FEN}),
        ]
        settled, _ = store.record_outcomes(conn, batch, price_fen=PRICE_FEN)
    finally:
        conn.close()
    assert len(settled) == 3
    rows = {r["sublessor_id"]: r for r in payment_rows(user_prop_target).values()}
    assert [rows[s]["status"] for s in (61, 62, 63)] == ["success", "failed", "success"]
    assert rows[61]["balance_after"] is None and rows[63]["balance_after"] == 5 * PRICE_FEN
