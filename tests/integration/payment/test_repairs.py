"""Repairs of the payment log: held order ids, and calls flagged without their order.

A call at order_allocated = 1 whose payment row is gone is never charged again by
any pass; but the deleted row may have been sent and charged, so the pass only
names it and fails; the operator asks the payment center, then restores the row
or resets the call (`repair orphans --yes`). The order id counter is only ever
raised (docs/payments.md, "A call flagged without its order", "Order ids below
820000000000").
"""

from __future__ import annotations

import logging

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import PRICE_FEN, payment_rows

from sublessor_airflow.operators.charge import ChargeValidCallsOperator
from sublessor_billing.db.connect import connect
from sublessor_billing.payments import orphans, store
from sublessor_billing.payments.orphans import OrphanedCalls
from sublessor_billing.payments.outcomes import ORDER_ID_MIN, OrderIdOutOfRange
from sublessor_billing.payments.repair import main, order_counter

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


def counter(target) -> int:
    conn = connect(target)
    try:
        return order_counter(conn)[0]
    finally:
        conn.close()


def charges_of(payment_center, call_id: str) -> int:
    """Money moved for this call at the payment center, over every order id it was sent with."""
    subject = f"400 call {call_id}"
    return sum(
        payment_center.ledger.get(order_id, 0)
        for order_id, order in payment_center.orders.items()
        if order["params"]["subject"] == subject
    )


def charge_task():
    return ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)


def check_due(target) -> None:
    """An hour passed since the orphan check's last round."""
    execute(
        target,
        "UPDATE job_cursor SET position_time = NOW() - INTERVAL 61 MINUTE WHERE name = %s",
        (orphans.CURSOR,),
    )


def fails_with(error: type[Exception]) -> Exception:
    with pytest.raises(AirflowFailException) as failed:
        charge_task().execute({})
    assert isinstance(failed.value.__cause__, error), failed.value
    return failed.value


def held_back(target, seed_calls, sub: int, *, judged_ago: int = 0) -> list[str]:
    """Two calls whose orders got ids below the range (what MySQL 5.7 does to an empty table's
    counter on restart): held back by the pass, never sent."""
    execute(target, f"ALTER TABLE {store.PAYMENT_LOG} AUTO_INCREMENT = 1000")
    calls = seed_calls(sub, 2, judged_ago=judged_ago)
    failed = fails_with(OrderIdOutOfRange)
    assert "python -m sublessor_billing.payments.repair release-held --yes" in str(failed)
    assert sorted(r["id"] for r in payment_rows(target).values()) == [1000, 1001]
    assert flags_of(target, calls) == [1, 1]
    return calls


def test_release_held_deletes_the_held_orders_and_resets_their_calls_in_one_go(
    billing_env, user_prop_target, payment_center, seed_calls, capsys
):
    payment_center.set_account(5, 10 * PRICE_FEN)
    calls = held_back(user_prop_target, seed_calls, 5)

    assert main(["release-held"]) == 1, "no id of the range is left: it needs --above"
    assert "--above" in capsys.readouterr().err
    nothing_sent = str(ORDER_ID_MIN - 1)
    assert main(["release-held", "--above", nothing_sent]) == 1, "without --yes it only says"
    assert "2 pending order(s) below" in capsys.readouterr().err
    assert len(payment_rows(user_prop_target)) == 2
    assert main(["release-held", "--yes", "--above", nothing_sent]) == 0
    assert "Deleted 2 pending order(s)" in capsys.readouterr().out
    assert payment_rows(user_prop_target) == {}
    assert flags_of(user_prop_target, calls) == [0, 0]
    assert counter(user_prop_target) == ORDER_ID_MIN
    assert main(["release-held", "--yes"]) == 0, "nothing left: safe to run twice"

    result = charge_task().execute({})
    assert (result["allocated"], result["success"]) == (2, 2)
    rows = payment_rows(user_prop_target)
    assert all(rows[c]["id"] >= ORDER_ID_MIN for c in calls)
    assert payment_center.full_state()["double_charged"] == []


def test_release_held_never_lowers_the_order_id_counter(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """It ran ALTER TABLE … AUTO_INCREMENT = 820000000000, which InnoDB takes down to MAX(id) + 1:
    ids already sent (rows deleted since) were handed out again, refused with 1004, and those
    calls were never charged."""
    payment_center.set_account(8, 10 * PRICE_FEN)
    sent = seed_calls(8, 3)
    assert charge_task().execute({})["success"] == 3  # order ids MIN, MIN + 1, MIN + 2
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG} WHERE id > %s", (ORDER_ID_MIN,))
    execute(  # and their calls written off, so nothing else is at stake
        user_prop_target,
        f"UPDATE {store.CALL_LOG} SET order_allocated = 2 WHERE call_id IN %s",
        (sent[1:],),
    )
    held = seed_calls(8, 2)  # orders written by hand below the range
    for order_id, call_id in zip((1000, 1001), held, strict=True):
        execute(
            user_prop_target,
            f"INSERT INTO {store.PAYMENT_LOG} (id, call_id, sublessor_id, amount, subject) "
            "VALUES (%s, %s, 8, %s, CONCAT('400 call ', %s))",
            (order_id, call_id, PRICE_FEN, call_id),
        )
        execute(
            user_prop_target,
            f"UPDATE {store.CALL_LOG} SET order_allocated = 1 WHERE call_id = %s",
            (call_id,),
        )
    fails_with(OrderIdOutOfRange)
    before = counter(user_prop_target)
    assert before >= ORDER_ID_MIN + 3

    assert main(["release-held", "--yes"]) == 0
    assert counter(user_prop_target) == before, "lowered"
    result = charge_task().execute({})
    assert (result["success"], result["failed"]) == (2, 0)
    assert all(payment_rows(user_prop_target)[c]["id"] >= ORDER_ID_MIN + 3 for c in held)
    assert [charges_of(payment_center, c) for c in (*sent, *held)] == [1] * 5
    assert payment_center.balance(8) == 5 * PRICE_FEN


def test_release_held_after_an_emptied_log_needs_the_highest_order_id_ever_sent(
    billing_env, user_prop_target, payment_center, seed_calls, capsys
):
    """The log emptied, then MySQL 5.7's restart set the counter back to 1: no row says which
    ids were sent. Raising to 820000000000 reused them (1004: never charged)."""
    payment_center.set_account(9, 10 * PRICE_FEN)
    sent = seed_calls(9, 2)
    assert charge_task().execute({})["success"] == 2  # order ids MIN, MIN + 1
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG}")
    execute(user_prop_target, f"UPDATE {store.CALL_LOG} SET order_allocated = 2")
    held = held_back(user_prop_target, seed_calls, 9)
    before = counter(user_prop_target)  # 1002 or more (INSERT … SELECT reserves ids ahead)

    assert main(["release-held", "--yes"]) == 1
    assert "--above" in capsys.readouterr().err
    assert len(payment_rows(user_prop_target)) == 2, "changed nothing"
    assert counter(user_prop_target) == before < ORDER_ID_MIN
    with pytest.raises(SystemExit):  # an id below the range cannot have been sent
        main(["release-held", "--yes", "--above", "1001"])
    assert main(["release-held", "--yes", "--above", str(ORDER_ID_MIN + 1)]) == 0
    assert counter(user_prop_target) == ORDER_ID_MIN + 2
    result = charge_task().execute({})
    assert (result["success"], result["failed"]) == (2, 0)
    assert [charges_of(payment_center, c) for c in (*sent, *held)] == [1] * 4
    assert payment_center.balance(9) == 6 * PRICE_FEN


def test_a_pass_names_a_call_whose_success_row_was_deleted_and_never_charges_it_again(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """The hourly check set such a call back to 0 and the same pass gave it a new order id: a
    call charged once was charged again."""
    payment_center.set_account(6, 10 * PRICE_FEN)
    calls = seed_calls(6, 2)
    assert charge_task().execute({})["success"] == 2
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG} WHERE call_id = %s", (calls[0],))
    check_due(user_prop_target)

    failed = str(fails_with(OrphanedCalls))
    assert calls[0] in failed and orphans.COMMAND in failed and "/trade/query" in failed
    assert flags_of(user_prop_target, calls) == [1, 1], "nothing reset"
    assert calls[0] not in payment_rows(user_prop_target)
    assert [charges_of(payment_center, c) for c in calls] == [1, 1]
    assert payment_center.balance(6) == 8 * PRICE_FEN
    result = charge_task().execute({})  # the next round is an hour later
    assert (result["orphans_found"], result["allocated"]) == (None, 0)


def test_the_orphans_command_names_then_resets_calls_never_charged(
    billing_env, user_prop_target, payment_center, seed_calls, capsys, caplog
):
    """The old two-step repair of held ids with its second step forgotten: the calls are at 1,
    their rows (never sent) deleted. The pass names them; the operator checks with the payment
    center, then resets them, and the next pass charges them once, without blaming the clock."""
    payment_center.set_account(7, 10 * PRICE_FEN)
    calls = held_back(user_prop_target, seed_calls, 7, judged_ago=3600)
    execute(user_prop_target, f"ALTER TABLE {store.PAYMENT_LOG} AUTO_INCREMENT = {ORDER_ID_MIN}")
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG} WHERE id < {ORDER_ID_MIN}")
    check_due(user_prop_target)

    failed = fails_with(OrphanedCalls)
    assert failed.__cause__.orphans == orphans.Orphans(2, tuple(calls), read=2)
    assert main(["orphans"]) == 1, "without --yes it only says"
    assert ", ".join(calls) in capsys.readouterr().err
    assert flags_of(user_prop_target, calls) == [1, 1]
    assert not {1000, 1001} & payment_center.orders.keys(), "/trade/query: not_found"
    assert main(["orphans", "--yes"]) == 0
    assert "2 call(s) set back to order_allocated = 0" in capsys.readouterr().out

    caplog.set_level(logging.INFO, logger="sublessor_billing.payments.allocation")
    result = charge_task().execute({})
    assert (result["found_by_sweep"], result["released_by_repair"]) == (2, 2)
    assert (result["allocated"], result["success"], result["orphans_found"]) == (2, 2, None)
    assert "clock" not in caplog.text
    assert "set back to order_allocated = 0 by a repair command" in caplog.text
    assert [charges_of(payment_center, c) for c in calls] == [1, 1]
    assert payment_center.balance(7) == 8 * PRICE_FEN
    assert main(["orphans", "--yes"]) == 0, "nothing left: safe to run twice"
    assert "0 call(s) set back" in capsys.readouterr().out


def test_the_orphans_command_reaches_further_back_than_the_pass(
    billing_env, user_prop_target, payment_center, seed_calls, capsys
):
    payment_center.set_account(7, 10 * PRICE_FEN)
    (old,) = seed_calls(7, 1, judged_ago=5 * 86400)
    assert charge_task().execute({})["success"] == 1
    execute(
        user_prop_target,
        f"UPDATE {store.CALL_LOG} SET received_at = NOW(3) - INTERVAL 5 DAY WHERE call_id = %s",
        (old,),
    )
    (row,) = payment_rows(user_prop_target).values()
    execute(user_prop_target, f"DELETE FROM {store.PAYMENT_LOG} WHERE call_id = %s", (old,))
    check_due(user_prop_target)
    assert charge_task().execute({})["orphans_found"] == 0, "two days back"
    assert main(["orphans"]) == 0
    assert main(["orphans", "--days", "7"]) == 1
    assert f"have order_allocated = 1 but no payment row: {old}." in capsys.readouterr().err

    # /trade/query says it was charged: the row is restored, not the call reset
    assert payment_center.orders[row["id"]]["result"]["code"] == 0
    execute(
        user_prop_target,
        f"INSERT INTO {store.PAYMENT_LOG} (id, call_id, sublessor_id, amount, subject, status, "
        "result_code, balance_after) VALUES (%s, %s, 7, %s, CONCAT('400 call ', %s), 'success', "
        "0, %s)",
        (row["id"], old, PRICE_FEN, old, 9 * PRICE_FEN),
    )
    assert main(["orphans", "--days", "7"]) == 0
    assert charges_of(payment_center, old) == 1
    assert payment_center.balance(7) == 9 * PRICE_FEN
