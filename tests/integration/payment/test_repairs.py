"""A call flagged as having its order (order_allocated = 1) whose payment row is gone.

Nothing of ours deletes a payment row; the repair of order ids below the range
does (pending rows never sent). Done by hand in two steps, the second (set
order_allocated = 0 on their calls) can be forgotten, and the calls were never
charged: no allocation reads a call at 1. Now one command does both steps in one
transaction, and the charge pass finds and resets such calls (docs/payments.md,
"A call flagged without its order").
"""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.operators.charge import ChargeValidCallsOperator
from sublessor_billing.db.connect import connect
from sublessor_billing.payments import orphans, store
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, OrderIdOutOfRange
from sublessor_billing.payments.repair import main

pytestmark = pytest.mark.integration


def execute(target, sql: str, params: tuple = ()) -> None:
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def flags_of(target, call_ids) -> list[int]:
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT order_allocated FROM {store.CALL_LOG} WHERE call_id IN %s ORDER BY id",
                (list(call_ids),),
            )
            return [int(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()


def charge_task():
    return ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)


def held_back(target, seed_calls, sub: int) -> list[str]:
    """Two calls whose orders got ids below the range (what MySQL 5.7 does to an empty table's
    counter on restart): held back by the pass, never sent."""
    execute(target, f"ALTER TABLE {store.PAYMENT_LOG} AUTO_INCREMENT = 1000")
    calls = seed_calls(sub, 2)
    with pytest.raises(AirflowFailException) as failed:
        charge_task().execute({})
    assert isinstance(failed.value.__cause__, OrderIdOutOfRange)
    assert "python -m sublessor_billing.payments.repair release-held --yes" in str(failed.value)
    assert sorted(r["id"] for r in payment_rows(target).values()) == [1000, 1001]
    assert flags_of(target, calls) == [1, 1]
    return calls


def test_release_held_deletes_the_held_orders_and_resets_their_calls_in_one_go(
    billing_env, user_prop_target, payment_center, seed_calls, capsys
):
    payment_center.set_account(5, 10 * PRICE_FEN)
    calls = held_back(user_prop_target, seed_calls, 5)

    assert main(["release-held"]) == 1, "without --yes it only says"
    assert "2 pending order(s) below" in capsys.readouterr().err
    assert len(payment_rows(user_prop_target)) == 2
    assert main(["release-held", "--yes"]) == 0
    assert "Deleted 2 pending order(s)" in capsys.readouterr().out
    assert payment_rows(user_prop_target) == {}
    assert flags_of(user_prop_target, calls) == [0, 0]
    assert main(["release-held", "--yes"]) == 0, "nothing left: safe to run twice"

    result = charge_task().execute({})
    assert (result["allocated"], result["success"]) == (2, 2)
    rows = payment_rows(user_prop_target)
    assert all(rows[c]["id"] >= ORDER_ID_MIN for c in calls)
    assert payment_center.full_state()["double_charged"] == []


def test_a_pass_resets_calls_flagged_without_their_order_and_charges_them(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """The old two-step repair with its second step forgotten."""
    payment_center.set_account(6, 10 * PRICE_FEN)
    calls = held_back(user_prop_target, seed_calls, 6)
    execute(user_prop_target, f"ALTER TABLE {store.PAYMENT_LOG} AUTO_INCREMENT = {ORDER_ID_MIN}")
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG} WHERE id < {ORDER_ID_MIN}")

    result = charge_task().execute({})  # the check ran with the pass above, an hour is not over
    assert (result["orphans_reset"], result["allocated"]) == (None, 0)
    execute(
        user_prop_target,
        "UPDATE job_cursor SET position_time = NOW() - INTERVAL 61 MINUTE WHERE name = %s",
        (orphans.CURSOR,),
    )
    result = charge_task().execute({})
    assert (result["orphans_reset"], result["allocated"], result["success"]) == (2, 2, 2)
    assert flags_of(user_prop_target, calls) == [1, 1]
    assert {r["status"] for r in payment_rows(user_prop_target).values()} == {"success"}
    execute(
        user_prop_target,
        "UPDATE job_cursor SET position_time = NOW() - INTERVAL 61 MINUTE WHERE name = %s",
        (orphans.CURSOR,),
    )
    assert charge_task().execute({})["orphans_reset"] == 0, "0 in normal operation"


def test_the_orphans_command_reaches_further_back_than_the_pass(
    billing_env, user_prop_target, payment_center, seed_calls, capsys
):
    payment_center.set_account(7, 10 * PRICE_FEN)
    (old,) = seed_calls(7, 1, judged_ago=5 * 86400)
    assert charge_task().execute({})["success"] == 1
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG} WHERE call_id = %s", (old,))
    conn = connect(user_prop_target)
    try:
        assert orphans.reset_orphans(conn, force=True) == orphans.Orphans(0, ())  # 2 days back
    finally:
        conn.close()
    assert main(["orphans", "--days", "7"]) == 0
    assert f"1 call(s) set back to order_allocated = 0: {old}" in capsys.readouterr().out
    result = charge_task().execute({})
    assert (result["found_by_sweep"], result["success"]) == (1, 1)
    assert payment_center.balance(7) == 8 * PRICE_FEN
