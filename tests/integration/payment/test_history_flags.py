"""Calls charged before migration 080: flagged by the application in chunks, never by the migration.

The history here: 25,000 calls logged before 080, every fifth invalid, the valid
ones charged (a payment row each) except two that an old clock step left
without an order; then 080 and the later migrations are applied.
"""

from __future__ import annotations

from contextlib import closing

import pytest
from payment_fixtures import PRICE_FEN

from sublessor_billing.db import migrate
from sublessor_billing.db.connect import connect
from sublessor_billing.db.migrate import apply_migrations
from sublessor_billing.payments import allocation, flags, store

pytestmark = pytest.mark.integration

HISTORY = 25_000
VALID = HISTORY - HISTORY // 5
MISSED = ("h-7", "h-24999")  # valid, never given an order


class Stop(Exception):
    """Stands in for a worker killed between two chunks."""


def migrate_up_to(conn, version: int, monkeypatch) -> None:
    every = migrate.available_migrations()
    with monkeypatch.context() as patch:
        patch.setattr(
            migrate, "available_migrations", lambda: [m for m in every if m.version <= version]
        )
        apply_migrations(conn)


@pytest.fixture
def history(database_factory, monkeypatch):
    """A database whose call log was charged for years before migration 080, then migrated."""
    target = database_factory("history")
    with closing(connect(target)) as conn:
        migrate_up_to(conn, 79, monkeypatch)
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {store.CALL_LOG} (call_id, sublessor_id, caller, called, status, "
                "start_time, duration, filter_rule, judged_at) SELECT CONCAT('h-', seq), "
                "1 + seq % 800, '13900000000', '4008001234', 1, TIMESTAMPADD(SECOND, seq, "
                "'2026-01-01'), 60, IF(seq % 5 = 0, 2, 1), NOW(3) - INTERVAL 2 DAY "
                f"FROM seq_1_to_{HISTORY}"
            )
            cur.execute(
                f"INSERT INTO {store.PAYMENT_LOG} (call_id, sublessor_id, amount, subject, status) "
                "SELECT call_id, sublessor_id, %s, CONCAT('400 call ', call_id), 'success' "
                f"FROM {store.CALL_LOG} WHERE filter_rule = 1 AND call_id NOT IN %s ORDER BY id",
                (PRICE_FEN, MISSED),
            )
            cur.execute(
                "INSERT INTO job_cursor (name, position_time) VALUES (%s, NOW() - INTERVAL 1 MINUTE)",
                (allocation.ALLOCATION_CURSOR,),
            )
        conn.commit()
        apply_migrations(conn)
    return target


def count(conn, sql: str, params: tuple = ()) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        (n,) = cur.fetchone()
    conn.commit()
    return int(n)


def flagged(conn) -> int:
    return count(conn, f"SELECT COUNT(*) FROM {store.CALL_LOG} WHERE order_allocated = 1")


def test_migration_080_changes_no_call_row(history):
    with closing(connect(history)) as conn:
        assert count(conn, f"SELECT COUNT(*) FROM {store.CALL_LOG} WHERE order_allocated <> 0") == 0
        assert count(conn, f"SELECT COUNT(*) FROM {store.CALL_LOG}") == HISTORY


def test_before_the_history_is_flagged_the_sweep_gives_no_call_a_second_order(history):
    with closing(connect(history)) as conn:
        assert not flags.history_flagged(conn)
        result = allocation.allocate_orders(conn, PRICE_FEN)
        assert result == allocation.Allocation(2, 2, found=MISSED), "only the calls without one"
        assert count(conn, f"SELECT COUNT(*) FROM {store.PAYMENT_LOG}") == VALID
        assert count(conn, f"SELECT COUNT(DISTINCT call_id) FROM {store.PAYMENT_LOG}") == VALID
        assert flagged(conn) == 2, "the allocation flags the calls of its own orders only"


def test_the_history_is_flagged_in_chunks_and_a_restart_resumes(history):
    def stop_after_first(covered: int) -> None:
        raise Stop(covered)

    with closing(connect(history)) as conn:
        with pytest.raises(Stop):
            flags.flag_history(conn, on_chunk=stop_after_first)
        assert count(conn, "SELECT position_id FROM job_cursor WHERE name = %s",
                     (flags.HISTORY_CURSOR,)) == flags.CHUNK  # fmt: skip
        assert flagged(conn) == flags.CHUNK - flags.CHUNK // 5 - 1  # h-7 has no order
        assert not flags.history_flagged(conn)
    with closing(connect(history)) as conn:  # the next pass resumes after the committed chunk
        chunks: list[int] = []
        result = flags.flag_history(conn, on_chunk=chunks.append)
        assert chunks == [2 * flags.CHUNK, HISTORY]
        assert (result.flagged, result.done) == (
            VALID - 2 - (flags.CHUNK - flags.CHUNK // 5 - 1),
            True,
        )
        assert flagged(conn) == VALID - 2
        assert flags.history_flagged(conn)
        assert flags.flag_history(conn) == flags.HistoryFlags(0, 0, True), "once"
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation(
            2, 2, found=MISSED
        )
        assert flagged(conn) == VALID
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation()
        assert count(conn, f"SELECT COUNT(*) FROM {store.PAYMENT_LOG}") == VALID


def test_the_daily_check_flags_calls_with_an_order_left_at_zero(history):
    with closing(connect(history)) as conn:
        assert flags.daily_check(conn) is None, "not before the history is flagged"
        flags.flag_history(conn)
        with conn.cursor() as cur:  # a payment row written by another system
            cur.execute(
                f"INSERT INTO {store.PAYMENT_LOG} (call_id, sublessor_id, amount, subject) "
                "VALUES ('h-7', 8, %s, '400 call h-7')",
                (PRICE_FEN,),
            )
        conn.commit()
        assert flags.daily_check(conn) == 1
        assert flags.daily_check(conn) is None, "once a day"
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE job_cursor SET position_time = NOW() - INTERVAL 25 HOUR WHERE name = %s",
                (flags.CHECK_CURSOR,),
            )
        conn.commit()
        assert flags.daily_check(conn) == 0
        assert allocation.allocate_orders(conn, PRICE_FEN).found == ("h-24999",)


def plan_of(plan: list[dict], table: str) -> tuple[str, str]:
    row = next(r for r in plan if r["table"] == table)
    return row["type"], row["key"]


def test_no_statement_of_the_allocation_or_the_flags_scans_a_whole_table(history):
    """EXPLAIN on the unflagged history (a (1, 0) range of 20,000 calls) and once it is flagged:
    each statement reads a range of the index it names and looks each call's order up by
    uk_call_id; none scans the call log or the payment log."""
    with closing(connect(history)) as conn:
        for state in ("unflagged", "flagged"):
            if state == "flagged":
                flags.flag_history(conn)
            allocation.allocate_orders(conn, PRICE_FEN)
            last = count(conn, f"SELECT MAX(id) FROM {store.PAYMENT_LOG}")
            mark = allocation.mark_plan(conn, last - 2)  # the calls of the last two orders
            assert plan_of(mark, "p") == ("range", "PRIMARY"), mark
            assert plan_of(mark, "c") == ("eq_ref", "uk_call_id"), mark
            for plan in (allocation.sweep_plan(conn), flags.check_plan(conn)):
                assert plan_of(plan, "c") == ("ref", "idx_unallocated"), plan
                assert plan_of(plan, "p") == ("eq_ref", "uk_call_id"), plan
            allocated = allocation.allocation_plan(conn)
            assert plan_of(allocated, "c") == ("range", "idx_filter_rule"), allocated
            assert plan_of(allocated, "p") == ("eq_ref", "uk_call_id"), allocated
            chunk = flags.chunk_plan(conn)
            assert plan_of(chunk, "c") == ("range", "PRIMARY"), chunk
            assert plan_of(chunk, "p") == ("eq_ref", "uk_call_id"), chunk


def test_the_first_charge_pass_flags_the_history_and_charges_only_the_calls_without_an_order(
    history, billing_env, airflow_connections, payment_center
):
    from sublessor_airflow.operators.charge import ChargeValidCallsOperator

    airflow_connections("user_prop_db", history.airflow_connection())
    for call_id in MISSED:  # sublessor 1 + n % 800 of call h-n
        payment_center.set_account(1 + int(call_id[2:]) % 800, 10 * PRICE_FEN)
    charge = ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)
    result = charge.execute({})
    assert (result["history_flagged"], result["flagged_by_check"]) == (VALID - 2, 0)
    assert (result["allocated"], result["found_by_sweep"], result["success"]) == (2, 2, 2)
    again = charge.execute({})
    assert (again["history_flagged"], again["flagged_by_check"], again["allocated"]) == (0, None, 0)
    assert payment_center.full_state()["double_charged"] == []
