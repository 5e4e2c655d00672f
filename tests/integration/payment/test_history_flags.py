"""Calls charged before migration 080: flagged by the application a few seconds per pass.

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
from sublessor_billing.payments import allocation, flags, orphans, store, sweep

pytestmark = pytest.mark.integration

HISTORY = 25_000
VALID = HISTORY - HISTORY // 5
MISSED = ("h-7", "h-24999")  # valid, never given an order
FIRST_CHUNK_END = 12_499  # the id of the 10,000th valid call (every fifth is invalid)
ALL_OF_IT = 600.0  # a flagging budget no test reaches


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


def run(conn, sql: str, params: tuple = ()) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, params)
    conn.commit()


def log_call(conn, call_id: str, sublessor_id: int, *, judged_ago_s: int = 0) -> None:
    """A call logged after the history and judged valid ``judged_ago_s`` seconds ago."""
    run(
        conn,
        f"INSERT INTO {store.CALL_LOG} (call_id, sublessor_id, caller, called, status, start_time, "
        "duration, filter_rule, judged_at) VALUES (%s, %s, '13900000000', '4008001234', 1, "
        "'2026-03-01 10:00:00', 60, 1, NOW(3) - INTERVAL %s SECOND)",
        (call_id, sublessor_id, judged_ago_s),
    )


def handler_reads(conn) -> int:
    """Index and row reads on this connection so far (its SHOW SESSION STATUS)."""
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Handler_read%'")
        rows = cur.fetchall()
    conn.commit()
    return sum(int(v) for k, v in rows if k != "Handler_read_key")


def test_migration_080_changes_no_call_row(history):
    with closing(connect(history)) as conn:
        assert count(conn, f"SELECT COUNT(*) FROM {store.CALL_LOG} WHERE order_allocated <> 0") == 0
        assert count(conn, f"SELECT COUNT(*) FROM {store.CALL_LOG}") == HISTORY


def test_before_the_history_is_flagged_the_sweep_gives_no_call_a_second_order(history):
    """Flagging not begun: nothing limits the sweep, and its anti-join still keeps every call
    that has an order out."""
    with closing(connect(history)) as conn:
        assert not flags.history_flagged(conn)
        result = allocation.allocate_orders(conn, PRICE_FEN)
        assert result == allocation.Allocation(2, 2, found=MISSED), "only the calls without one"
        assert count(conn, f"SELECT COUNT(*) FROM {store.PAYMENT_LOG}") == VALID
        assert count(conn, f"SELECT COUNT(DISTINCT call_id) FROM {store.PAYMENT_LOG}") == VALID
        assert flagged(conn) == 2, "the allocation flags the calls of its own orders only"


def test_while_the_history_is_flagged_the_sweep_reads_above_it_and_then_finds_the_missed(history):
    """Begun but not done: the sweep reads only the calls logged after the history (its
    floor), so a pass never anti-joins the whole history; the history's calls without an order
    are allocated by the first allocation after the history is flagged."""
    with closing(connect(history)) as conn:
        assert flags.flag_history(conn, budget_s=0) == flags.HistoryFlags(0, 0, False)
        with conn.cursor() as cur:
            assert flags.sweep_skip(cur) == (0, HISTORY)
        conn.commit()
        log_call(conn, "late-1", 9, judged_ago_s=7200)  # behind the high-water: the sweep's
        log_call(conn, "new-1", 9)
        before = handler_reads(conn)
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation(
            2, 1, found=("late-1",)
        )
        assert handler_reads(conn) - before < 1000, "read the history"
        assert count(conn, f"SELECT COUNT(*) FROM {store.PAYMENT_LOG} WHERE call_id IN %s",
                     (MISSED,)) == 0  # fmt: skip

        assert flags.flag_history(conn, budget_s=ALL_OF_IT).done
        with conn.cursor() as cur:
            assert flags.sweep_skip(cur) == (0, 0)
        conn.commit()
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation(
            2, 2, found=MISSED
        )
        assert count(conn, f"SELECT COUNT(DISTINCT call_id) FROM {store.PAYMENT_LOG}") == VALID + 2


def test_the_history_is_flagged_in_chunks_and_a_restart_resumes(history):
    def stop_after_first(covered: int) -> None:
        raise Stop(covered)

    with closing(connect(history)) as conn:
        with pytest.raises(Stop):
            flags.flag_history(conn, budget_s=ALL_OF_IT, on_chunk=stop_after_first)
        assert count(conn, "SELECT position_id FROM job_cursor WHERE name = %s",
                     (flags.HISTORY_CURSOR,)) == FIRST_CHUNK_END  # fmt: skip
        assert flagged(conn) == flags.CHUNK - 1  # h-7 has no order
        assert not flags.history_flagged(conn)
    with closing(connect(history)) as conn:  # the next pass resumes after the committed chunk
        chunks: list[int] = []
        result = flags.flag_history(conn, budget_s=ALL_OF_IT, on_chunk=chunks.append)
        assert chunks == [HISTORY - 1]  # the last valid call; the next read finds none left
        assert (result.flagged, result.done) == (VALID - 2 - (flags.CHUNK - 1), True)
        assert flagged(conn) == VALID - 2
        assert flags.history_flagged(conn)
        assert flags.flag_history(conn) == flags.HistoryFlags(0, 0, True), "once"
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation(
            2, 2, found=MISSED
        )
        assert flagged(conn) == VALID
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation()
        assert count(conn, f"SELECT COUNT(*) FROM {store.PAYMENT_LOG}") == VALID


def test_an_already_flagged_database_is_done_in_one_short_read(history):
    """A database the first migration 080 flagged (one UPDATE of the whole history): the first
    pass reads the few calls still at (1, 0), none of the history, and no id gap costs a round."""
    with closing(connect(history)) as conn:
        run(  # what migration 080 did before it became DDL only
            conn,
            f"UPDATE {store.CALL_LOG} c JOIN {store.PAYMENT_LOG} p ON p.call_id = c.call_id "
            "SET c.order_allocated = 1 WHERE c.filter_rule = 1",
        )
        gap = 1_000_000  # ids skipped (a failed bulk insert, an AUTO_INCREMENT raised by hand)
        run(conn, f"ALTER TABLE {store.CALL_LOG} AUTO_INCREMENT = {gap}")
        log_call(conn, "after-the-gap", 9)
        chunks: list[int] = []
        before = handler_reads(conn)
        result = flags.flag_history(conn, on_chunk=chunks.append)
        assert handler_reads(conn) - before < 100, "walked the history"
        assert result == flags.HistoryFlags(0, 1, True), "one chunk: the 3 calls at (1, 0)"
        assert chunks == [gap]
        assert allocation.allocate_orders(conn, PRICE_FEN).allocated == 3


def test_the_daily_check_flags_calls_with_an_order_left_at_zero(history):
    with closing(connect(history)) as conn:
        assert flags.daily_check(conn) is None, "not before the history is flagged"
        flags.flag_history(conn, budget_s=ALL_OF_IT)
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


def test_with_no_high_water_the_allocation_reads_the_unallocated_calls_only(history):
    """The old repair advice deleted the high-water: the next allocation anti-joined every valid
    call through idx_filter_rule in one transaction. Now it reads the (1, 0) range of
    idx_unallocated, at most a batch per transaction."""
    with closing(connect(history)) as conn:
        flags.flag_history(conn, budget_s=ALL_OF_IT)
        run(conn, "DELETE FROM job_cursor WHERE name = %s", (allocation.ALLOCATION_CURSOR,))
        before = handler_reads(conn)
        result = allocation.allocate_orders(conn, PRICE_FEN, batch=1)
        assert handler_reads(conn) - before < 1000, "read every valid call"
        assert (result.allocated, result.found_by_sweep, result.transactions) == (2, 0, 3)
        assert allocation.high_water(conn) is not None
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation()


def test_with_no_high_water_a_history_call_without_an_order_waits_only_for_flagging_to_pass_it(
    history,
):
    """The first pass after the deploy (no high-water): the sweep read only above the history's
    end until the whole history was flagged (hours on 100M calls), so a call judged before the
    deploy and never charged waited all that time. Flagging moves every call with an order out
    of (1, 0), so below its position the sweep reads what is left: the calls without one."""

    def stop_after_first(covered: int) -> None:
        raise Stop(covered)

    with closing(connect(history)) as conn:
        run(conn, "DELETE FROM job_cursor WHERE name = %s", (allocation.ALLOCATION_CURSOR,))
        with pytest.raises(Stop):
            flags.flag_history(conn, budget_s=ALL_OF_IT, on_chunk=stop_after_first)
        with conn.cursor() as cur:
            assert flags.sweep_skip(cur) == (FIRST_CHUNK_END, HISTORY)
        conn.commit()
        before = handler_reads(conn)
        result = allocation.allocate_orders(conn, PRICE_FEN)
        assert handler_reads(conn) - before < 1000, "read the history"
        assert (result.allocated, result.found_by_sweep) == (1, 0), "h-7: a first run's call"
        assert count(conn, f"SELECT COUNT(*) FROM {store.PAYMENT_LOG} WHERE call_id = 'h-7'") == 1
        assert allocation.high_water(conn) is not None
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation()
        assert flags.flag_history(conn, budget_s=ALL_OF_IT).done  # passes h-24999 at last
        assert allocation.allocate_orders(conn, PRICE_FEN) == allocation.Allocation(
            1, 1, found=("h-24999",)
        )
        assert count(conn, f"SELECT COUNT(DISTINCT call_id) FROM {store.PAYMENT_LOG}") == VALID


def orphan_flags(conn, call_ids) -> list[int]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT order_allocated FROM {store.CALL_LOG} WHERE call_id IN %s ORDER BY id",
            (list(call_ids),),
        )
        rows = [int(r[0]) for r in cur.fetchall()]
    conn.commit()
    return rows


def test_the_orphan_check_reads_the_window_a_bounded_chunk_at_a_time_and_changes_nothing(history):
    """It read every valid call of 48 h in one statement and sorted them, each hour, before the
    allocation and outside any budget. Now: chunks of the (1, 1) range in id order from a cursor,
    one per pass and more while its budget lasts; it names what it finds and resets nothing."""
    gone = ("h-3", "h-20001")  # payment rows deleted by hand
    with closing(connect(history)) as conn:
        flags.flag_history(conn, budget_s=ALL_OF_IT)
        run(conn, f"DELETE FROM {store.PAYMENT_LOG} WHERE call_id IN %s", (gone,))
        before = handler_reads(conn)
        first = orphans.check_orphans(conn, budget_s=0, chunk=2000)
        assert handler_reads(conn) - before < 4 * 2000, "read more than one chunk"
        assert first == orphans.Orphans(1, ("h-3",), read=2000, done=False)
        assert count(conn, "SELECT position_id FROM job_cursor WHERE name = %s",
                     (orphans.CURSOR,)) == 2501  # fmt: skip  # 2,000th at (1, 1): not h-7
        rest = orphans.check_orphans(conn, budget_s=ALL_OF_IT, chunk=2000)
        assert rest == orphans.Orphans(1, ("h-20001",), read=VALID - 2 - 2000, done=True)
        assert orphans.check_orphans(conn) is None, "the next round is an hour later"
        assert orphan_flags(conn, gone) == [1, 1], "nothing reset"
        run(
            conn,
            "UPDATE job_cursor SET position_time = NOW() - INTERVAL 61 MINUTE WHERE name = %s",
            (orphans.CURSOR,),
        )
        again = orphans.check_orphans(conn, budget_s=ALL_OF_IT)
        assert (again.found, again.call_ids, again.done) == (2, gone, True)
        assert allocation.allocate_orders(conn, PRICE_FEN).allocated == 2, "only h-7, h-24999"


def plan_of(plan: list[dict], table: str, select_type: str | None = None) -> tuple[str, str]:
    row = next(r for r in plan if r["table"] == table and select_type in (None, r["select_type"]))
    return row["type"], row["key"]


def no_scan(plan: list[dict]) -> None:
    scans = [
        r for r in plan if not str(r["table"]).startswith("<") and r["type"] in ("ALL", "index")
    ]
    assert not scans, plan


def test_no_statement_of_the_allocation_or_the_flags_scans_a_whole_table(history):
    """EXPLAIN on the history being flagged (the (1, 0) range holds 20,000 calls) and once it
    is flagged: each statement reads a range of the index it names and looks each call's order
    up by uk_call_id; none scans the call log or the payment log."""
    with closing(connect(history)) as conn:
        flags.flag_history(conn, budget_s=0)
        for state in ("being flagged", "flagged"):
            if state == "flagged":
                flags.flag_history(conn, budget_s=ALL_OF_IT)
            allocation.allocate_orders(conn, PRICE_FEN)
            last = count(conn, f"SELECT MAX(id) FROM {store.PAYMENT_LOG}")
            mark = allocation.mark_plan(conn, last - 2)  # the calls of the last two orders
            assert plan_of(mark, "p") == ("range", "PRIMARY"), mark
            assert plan_of(mark, "c") == ("eq_ref", "uk_call_id"), mark
            no_high_water = store.explain(
                conn, sweep.SWEEP_SELECT, sweep.sweep_params(0, None, 600, (0, 0), allocation.BATCH)
            )
            for plan in (allocation.sweep_plan(conn), no_high_water):
                # nothing skipped: (id <= 0 OR id > 0) is the whole (1, 0) range, read as a ref
                assert plan_of(plan, "c", "DERIVED") in (
                    ("range", "idx_unallocated"),
                    ("ref", "idx_unallocated"),
                ), plan
                derived = next(
                    r for r in plan if (r["table"], r["select_type"]) == ("c", "DERIVED")
                )
                assert "filesort" not in str(derived["Extra"]), plan
                assert plan_of(plan, "p", "DERIVED") == ("eq_ref", "uk_call_id"), plan
                assert plan_of(plan, "c", "PRIMARY") == ("eq_ref", "PRIMARY"), plan
                no_scan(plan)
            check = flags.check_plan(conn)
            assert plan_of(check, "c") == ("ref", "idx_unallocated"), check
            assert plan_of(check, "p") == ("eq_ref", "uk_call_id"), check
            plan = allocation.allocation_plan(conn)
            assert plan_of(plan, "c") == ("range", "idx_filter_rule"), plan
            assert plan_of(plan, "p") == ("eq_ref", "uk_call_id"), plan
            start, chunk_range, found = orphans.orphans_plans(conn)
            assert plan_of(start, "c") == ("range", "idx_received"), start
            assert plan_of(chunk_range, "c", "DERIVED") == ("range", "idx_unallocated"), chunk_range
            assert plan_of(found, "c") == ("range", "idx_unallocated"), found
            assert plan_of(found, "p") == ("eq_ref", "uk_call_id"), found
            for plan in (start, chunk_range, found):  # index order: no sort of the window
                no_scan(plan)
                assert not any("filesort" in str(r["Extra"]) for r in plan), plan
            chunk_range, chunk = flags.chunk_plans(conn)
            assert plan_of(chunk_range, "c", "DERIVED") == ("range", "idx_unallocated"), chunk_range
            assert plan_of(chunk, "c") == ("range", "idx_unallocated"), chunk
            assert plan_of(chunk, "p") == ("eq_ref", "uk_call_id"), chunk
            for plan in (mark, check, chunk_range, chunk):
                no_scan(plan)


def test_the_first_charge_pass_flags_the_history_and_charges_only_the_calls_without_an_order(
    history, billing_env, airflow_connections, payment_center, monkeypatch
):
    from sublessor_airflow.operators.charge import ChargeValidCallsOperator

    monkeypatch.setattr(flags, "BUDGET_S", ALL_OF_IT)
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


def test_a_pass_out_of_flagging_budget_still_charges_new_calls_and_later_the_missed(
    history, billing_env, airflow_connections, payment_center, monkeypatch
):
    """The first pass after the deploy used to flag the whole history before allocating anything
    (35 min and more on 100M calls: nothing charged meanwhile). Now it flags for a budget, then
    allocates and charges; the history's calls without an order are charged once it is flagged."""
    from sublessor_airflow.operators.charge import ChargeValidCallsOperator

    airflow_connections("user_prop_db", history.airflow_connection())
    for sub in (8, 9, 200):  # h-n is sublessor 1 + n % 800's
        payment_center.set_account(sub, 10 * PRICE_FEN)
    with closing(connect(history)) as conn:
        log_call(conn, "new-1", 9)
    charge = ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)

    monkeypatch.setattr(flags, "BUDGET_S", 0.0)  # spent before the first chunk
    result = charge.execute({})
    assert (result["history_flagged"], result["allocated"], result["success"]) == (0, 1, 1)
    with closing(connect(history)) as conn:  # logged after the history: above the sweep's floor
        log_call(conn, "late-1", 9, judged_ago_s=7200)
    result = charge.execute({})
    assert (result["allocated"], result["found_by_sweep"], result["success"]) == (1, 1, 1)
    monkeypatch.setattr(flags, "CHUNK", 4_000)
    monkeypatch.setattr(flags, "BUDGET_S", ALL_OF_IT)
    result = charge.execute({})
    assert result["history_flagged"] == VALID - 2
    assert (result["allocated"], result["found_by_sweep"], result["success"]) == (2, 2, 2)
    assert payment_center.full_state()["double_charged"] == []
    assert payment_center.full_state()["orders"] == 4
