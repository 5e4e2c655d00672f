"""What call400_billing's sensor counts as work in user_prop_db (sublessor_billing.leftovers)."""

from __future__ import annotations

import pytest

from sublessor_billing.leftovers import Leftovers, explain, find_leftovers

pytestmark = pytest.mark.integration

CALL = (
    "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
    " start_time, duration, filter_rule, judged_at, held_reason, order_allocated)"
    " VALUES (%s, %s, '13800138000', '4008001234', 1, '2026-03-01 10:00:00', 60, %s, %s, %s, %s)"
)
ORDER = (
    "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount, subject,"
    " status, sent_at) VALUES (%s, %s, 7, 4000, 'x', %s, %s)"
)
DECISION = (
    "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id, reason,"
    " status, attempts, attempted_at) VALUES (%s, 7, %s, 'dry', %s, %s, %s)"
)


def run(conn, sql: str, *rows: tuple) -> None:
    with conn.cursor() as cur:
        for row in rows or [()]:
            cur.execute(sql, row)
    conn.commit()


def found(conn) -> str:
    return find_leftovers(conn).describe()


def test_an_empty_database_has_no_work(user_prop_conn) -> None:
    assert find_leftovers(user_prop_conn) == Leftovers()
    assert not find_leftovers(user_prop_conn)


def test_each_exists_reads_an_index(user_prop_conn) -> None:
    plan = [row for row in explain(user_prop_conn) if row["table"] is not None]
    tables = [row for row in plan if not row["table"].startswith("<derived")]
    # unjudged; unallocated (newest of its range, then each one's order); two each for
    # orders and decisions (the second: what a pass tried moments ago)
    assert len(tables) == 7, plan
    for row in tables:
        assert row["key"] in ("idx_filter_rule", "idx_unallocated", "idx_status", "uk_call_id"), row
        assert row["type"] in ("ref", "eq_ref", "range"), row  # an index, never a full scan
        assert "filesort" not in (row["Extra"] or ""), row
    assert {row["key"] for row in tables} == {
        "idx_filter_rule", "idx_unallocated", "idx_status", "uk_call_id"
    }  # fmt: skip


def test_calls_judged_held_or_unfit_are_not_work_but_unjudged_and_unallocated_are(
    user_prop_conn,
) -> None:
    run(
        user_prop_conn,
        CALL,
        ("judged", 7, 2, "2026-03-01 10:00:00", None, 0),  # invalid: done
        ("charged", 7, 1, "2026-03-01 10:00:00", None, 1),  # valid, has its order
        ("held", 7, 0, "2026-03-01 10:00:00", "the judge failed on this call: x", 0),
        ("unfit", 0, 1, "2026-03-01 10:00:00", None, 0),  # sublessor 0 cannot be charged
    )
    assert found(user_prop_conn) == "none"
    run(user_prop_conn, CALL, ("new", 7, 0, None, None, 0))
    assert found(user_prop_conn) == "unjudged"
    run(user_prop_conn, "UPDATE sublessor_call_log_201409 SET filter_rule = 1, judged_at = NOW(3)"
                        " WHERE call_id = 'new'")  # fmt: skip
    assert found(user_prop_conn) == "unallocated"


def test_valid_calls_charged_before_their_flag_was_set_are_not_work(user_prop_conn) -> None:
    """Until payments/flags.py flags the history, charged calls sit at order_allocated 0."""
    run(user_prop_conn, CALL, *[(f"old-{n}", 7, 1, "2026-03-01 10:00:00", None, 0)
                                for n in range(150)])  # fmt: skip
    run(user_prop_conn, ORDER, *[(820000000100 + n, f"old-{n}", "success", None)
                                 for n in range(150)])  # fmt: skip
    assert found(user_prop_conn) == "none"


def test_pending_orders_are_work_unless_tried_moments_ago_or_below_the_range(
    user_prop_conn,
) -> None:
    run(user_prop_conn, ORDER, (77, "by-hand", "pending", None))  # held back for a person
    run(user_prop_conn, ORDER, (820000000001, "settled", "success", None))
    assert found(user_prop_conn) == "none"
    run(user_prop_conn, ORDER, (820000000002, "crashed", "pending", None))  # never answered
    assert found(user_prop_conn) == "pending_orders"
    # a pass just tried it and gave up: the next pass is due once RETRY_AFTER_S passed
    run(user_prop_conn, "UPDATE sublessor_call_payment_log_201409 SET sent_at = NOW(3)"
                        " WHERE id = 820000000002")  # fmt: skip
    assert found(user_prop_conn) == "none"
    assert find_leftovers(user_prop_conn, retry_after_s=0).pending_orders
    run(user_prop_conn, "UPDATE sublessor_call_payment_log_201409"
                        " SET sent_at = NOW(3) - INTERVAL 31 SECOND")  # fmt: skip
    assert found(user_prop_conn) == "pending_orders"


def test_undelivered_decisions_are_work_unless_handed_over_moments_ago(user_prop_conn) -> None:
    run(user_prop_conn, DECISION, ("sublessor-offline-1", 1, "done", 1, None))
    assert found(user_prop_conn) == "none"
    run(user_prop_conn, DECISION, ("sublessor-offline-2", 2, "pending", 0, None))
    assert found(user_prop_conn) == "undelivered"
    run(user_prop_conn, "UPDATE sublessor_offline_event SET attempts = 1, attempted_at = NOW(3)"
                        " WHERE status = 'pending'")  # fmt: skip
    assert found(user_prop_conn) == "none"
    run(user_prop_conn, "UPDATE sublessor_offline_event"
                        " SET attempted_at = NOW(3) - INTERVAL 31 SECOND")  # fmt: skip
    assert found(user_prop_conn) == "undelivered"
