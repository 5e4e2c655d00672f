"""What call400_billing's sensor counts as work in user_prop_db (sublessor_billing.leftovers)."""

from __future__ import annotations

import pytest

from sublessor_billing.leftovers import Leftovers, explain, find_leftovers
from sublessor_billing.payments import flags

pytestmark = pytest.mark.integration

CALL = (
    "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
    " start_time, duration, filter_rule, judged_at, held_reason, order_allocated)"
    " VALUES (%s, %s, '13800138000', '4008001234', 1, '2026-03-01 10:00:00', 60, %s, %s, %s, %s)"
)
HELD = (
    "INSERT INTO sublessor_call_log_201409 (call_id, sublessor_id, caller, called, status,"
    " start_time, duration, judged_at, held_reason, held_count)"
    " VALUES (%s, 7, '13800138000', '4008001234', 1, '2026-03-01 10:00:00', 60,"
    " NOW(3) - INTERVAL %s MINUTE, %s, %s)"
)
ORDER = (
    "INSERT INTO sublessor_call_payment_log_201409 (id, call_id, sublessor_id, amount, subject,"
    " status, sent_at) VALUES (%s, %s, 7, 4000, 'x', %s, %s)"
)
DECISION = (
    "INSERT INTO sublessor_offline_event (request_id, sublessor_id, trigger_order_id, reason,"
    " status, attempts, attempted_at) VALUES (%s, 7, %s, 'dry', %s, %s, %s)"
)
FAILED = "the judge failed on this call: ValueError: x"


def run(conn, sql: str, *rows: tuple) -> None:
    with conn.cursor() as cur:
        for row in rows or [()]:
            cur.execute(sql, row)
    conn.commit()


def found(conn) -> str:
    return find_leftovers(conn).describe()


@pytest.fixture
def conn(user_prop_conn):
    """user_prop_db after a pass: migrated, and the history's end recorded (payments/flags.py)."""
    flags.flag_history(user_prop_conn)
    return user_prop_conn


def test_an_empty_database_has_no_work(conn) -> None:
    assert find_leftovers(conn) == Leftovers()
    assert not find_leftovers(conn)


@pytest.mark.parametrize("flagging", [False, True], ids=["history-flagged", "flagging"])
def test_each_exists_reads_an_index(conn, flagging) -> None:
    if flagging:  # flagging at 400 of a history ending at 1000: two ranges of idx_unallocated
        run(conn, "UPDATE job_cursor SET position_id = IF(name = 'payment_flag_history', 400,"
                  " 1000), position_time = NULL"
                  " WHERE name IN ('payment_flag_history', 'payment_flag_history_end')")  # fmt: skip
        assert flags.recorded_skip(conn.cursor()) == (400, 1000)
    plan = [row for row in explain(conn) if row["table"] is not None]
    tables = [row for row in plan if not row["table"].startswith("<derived")]
    # unjudged, reset by hand, retry due; unallocated (its range, then each one's order);
    # two for orders (the second: what a pass tried moments ago); one for decisions
    assert len(tables) == 8, plan
    for row in tables:
        assert row["key"] in ("idx_filter_rule", "idx_unallocated", "idx_status", "uk_call_id"), row
        assert row["type"] in ("ref", "eq_ref", "range"), row  # an index, never a full scan
        assert "filesort" not in (row["Extra"] or ""), row
    assert [row["key"] for row in tables].count("idx_filter_rule") == 3, plan
    unallocated = next(row for row in tables if row["key"] == "idx_unallocated")
    # (1, 0) outside the part not flagged yet; with nothing skipped, (id <= 0 OR id > 0) may be
    # read as the ref it is
    assert unallocated["type"] == "range" or not flagging, unallocated


def test_calls_judged_held_or_unfit_are_not_work_but_unjudged_and_unallocated_are(conn) -> None:
    run(
        conn,
        CALL,
        ("judged", 7, 2, "2026-03-01 10:00:00", None, 0),  # invalid: done
        ("charged", 7, 1, "2026-03-01 10:00:00", None, 1),  # valid, has its order
        ("held", 7, 0, "2026-03-01 10:00:00", "start_time is before 2000-01-01", 0),
        ("unfit", 0, 1, "2026-03-01 10:00:00", None, 0),  # sublessor 0 cannot be charged
    )
    assert found(conn) == "none"
    run(conn, CALL, ("new", 7, 0, None, None, 0))
    assert found(conn) == "unjudged"
    run(conn, "UPDATE sublessor_call_log_201409 SET filter_rule = 1, judged_at = NOW(3)"
              " WHERE call_id = 'new'")  # fmt: skip
    assert found(conn) == "unallocated"


def test_held_calls_are_work_once_their_automatic_retry_is_due(conn) -> None:
    """calls/held.py: retried 5 minutes after the first hold, then twice as long each time."""
    run(
        conn,
        HELD,
        ("implausible", 600, "start_time is before 2000-01-01", 1),  # waits for a person
        ("retried-out", 60 * 24 * 30, FAILED, 9),  # retried HOLD_RETRIES times: stays held
        ("not-yet", 9, FAILED, 2),  # its second retry is due 10 minutes after the last hold
    )
    assert found(conn) == "none"
    run(conn, "UPDATE sublessor_call_log_201409 SET judged_at = NOW(3) - INTERVAL 11 MINUTE"
              " WHERE call_id = 'not-yet'")  # fmt: skip
    assert found(conn) == "retry_due"


def test_a_call_set_back_to_rule_0_by_hand_is_work(conn) -> None:
    """The judge reopens it (judge.reopen_hand_reset): judged_at set, no held_reason."""
    run(conn, CALL, ("by-hand", 7, 0, "2026-03-01 10:00:00", None, 1))
    assert found(conn) == "reset_by_hand"


def test_a_valid_call_without_an_order_is_work_however_many_newer_calls_are_unflagged(
    conn,
) -> None:
    """An operator set order_allocated = 0 on charged calls newer than one without an order."""
    run(conn, CALL, ("orderless", 7, 1, "2026-03-01 10:00:00", None, 0))
    run(conn, CALL, *[(f"reset-{n}", 7, 1, "2026-03-01 10:00:00", None, 0) for n in range(150)])
    run(conn, ORDER, *[(820000000100 + n, f"reset-{n}", "success", None) for n in range(150)])
    assert found(conn) == "unallocated"
    run(conn, ORDER, (820000000001, "orderless", "success", None))
    assert found(conn) == "none"


def test_while_the_history_is_flagged_only_calls_above_its_end_are_looked_at(
    user_prop_conn,
) -> None:
    """Until payments/flags.py has flagged the history, charged calls sit at order_allocated 0
    below its end, where the allocation's sweep does not read either (flags.sweep_skip)."""
    history = [(f"old-{n}", 7, 1, "2026-03-01 10:00:00", None, 0) for n in range(150)]
    run(user_prop_conn, CALL, *history, ("old-orderless", 7, 1, "2026-03-01 10:00:00", None, 0))
    run(user_prop_conn, ORDER, *[(820000000100 + n, f"old-{n}", "success", None)
                                 for n in range(150)])  # fmt: skip
    # no pass recorded where the history ends: it cannot be told from new calls, a pass is due
    assert found(user_prop_conn) == "unallocated"
    flags.flag_history(user_prop_conn, budget_s=0)  # a pass records the end, flags nothing yet
    assert flags.sweep_skip(user_prop_conn.cursor())[1] > 0
    assert found(user_prop_conn) == "none"
    run(user_prop_conn, CALL, ("new", 7, 1, "2026-03-01 10:00:00", None, 0))
    assert found(user_prop_conn) == "unallocated"


def test_pending_orders_are_work_unless_tried_moments_ago_or_below_the_range(conn) -> None:
    run(conn, ORDER, (77, "by-hand", "pending", None))  # held back for a person
    run(conn, ORDER, (820000000001, "settled", "success", None))
    assert found(conn) == "none"
    run(conn, ORDER, (820000000002, "crashed", "pending", None))  # never answered
    assert found(conn) == "pending_orders"
    # a pass just tried it and gave up: the next pass is due once RETRY_AFTER_S passed
    run(conn, "UPDATE sublessor_call_payment_log_201409 SET sent_at = NOW(3)"
              " WHERE id = 820000000002")  # fmt: skip
    assert found(conn) == "none"
    assert find_leftovers(conn, retry_after_s=0).pending_orders
    run(conn, "UPDATE sublessor_call_payment_log_201409"
              " SET sent_at = NOW(3) - INTERVAL 31 SECOND")  # fmt: skip
    assert found(conn) == "pending_orders"


def test_undelivered_decisions_are_work_unless_handed_over_moments_ago(conn) -> None:
    run(conn, DECISION, ("sublessor-offline-1", 1, "done", 1, None))
    assert found(conn) == "none"
    run(conn, DECISION, ("sublessor-offline-2", 2, "pending", 0, None))
    assert found(conn) == "undelivered"
    run(conn, "UPDATE sublessor_offline_event SET attempts = 1, attempted_at = NOW(3)"
              " WHERE status = 'pending'")  # fmt: skip
    assert found(conn) == "none"
    run(conn, "UPDATE sublessor_offline_event"
              " SET attempted_at = NOW(3) - INTERVAL 31 SECOND")  # fmt: skip
    assert found(conn) == "undelivered"
    # each decision on its own: one handed over just now does not hold back another
    run(conn, DECISION, ("sublessor-offline-3", 3, "pending", 1, None))
    run(conn, "UPDATE sublessor_offline_event SET attempted_at = NOW(3)"
              " WHERE request_id = 'sublessor-offline-3'")  # fmt: skip
    assert found(conn) == "undelivered"


def test_a_decision_a_pass_holds_a_live_claim_on_is_not_work(conn) -> None:
    """A pass killed after claiming leaves a lease: no pass sends it before the lease ends."""
    run(conn, DECISION, ("sublessor-offline-1", 1, "pending", 1, None))
    run(conn, "UPDATE sublessor_offline_event SET claimed_by = 'host:1:t',"
              " attempted_at = NOW(3) - INTERVAL 60 SECOND,"
              " claimed_until = NOW(3) + INTERVAL 240 SECOND")  # fmt: skip
    assert found(conn) == "none"
    run(conn, "UPDATE sublessor_offline_event SET claimed_until = NOW(3) - INTERVAL 1 SECOND")
    assert found(conn) == "undelivered"


@pytest.mark.parametrize(
    "behind",
    [
        "ALTER TABLE sublessor_offline_event DROP COLUMN attempted_at",  # before migration 100
        "DROP TABLE sublessor_offline_event",
        "DROP TABLE job_cursor",
    ],
    ids=["column", "table", "cursor"],
)
def test_a_database_the_code_is_ahead_of_is_work_so_that_a_pass_migrates_it(conn, behind) -> None:
    run(conn, ORDER, (820000000002, "crashed", "pending", None))
    run(conn, behind)
    assert find_leftovers(conn) == Leftovers(schema_behind=True)
