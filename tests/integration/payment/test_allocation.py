"""Order allocation: bounded by the high-water in job_cursor, index-backed, under the judge's lock."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException
from payment_fixtures import PRICE_FEN, payment_rows
from support.db import other_sessions_running
from support.waiting import Worker, wait_until

from sublessor_airflow.operators.charge import ChargeValidCallsOperator
from sublessor_billing.calls.judge import JudgeLockTimeout, judge_lock
from sublessor_billing.db.connect import connect
from sublessor_billing.payments import allocation, store

pytestmark = pytest.mark.integration


def allocate(target, **kw) -> allocation.Allocation:
    conn = connect(target)
    try:
        return allocation.allocate_orders(conn, PRICE_FEN, **kw)
    finally:
        conn.close()


def high_water(target):
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT position_time, TIMESTAMPDIFF(SECOND, position_time, NOW(3)) FROM job_cursor "
                "WHERE name = %s",
                (allocation.ALLOCATION_CURSOR,),
            )
            return cur.fetchone()
    finally:
        conn.close()


def test_allocates_only_calls_judged_since_the_high_water_minus_the_margin(
    user_prop_target, seed_calls
):
    first = seed_calls(1, 2, judged_ago=7200)
    assert high_water(user_prop_target) is None
    assert allocate(user_prop_target) == allocation.Allocation(2), "no high-water: the history"
    position, age = high_water(user_prop_target)
    assert position is not None and 0 <= age <= 60

    recent = seed_calls(1, 1, judged_ago=300)  # inside the 600 s margin
    unjudged = seed_calls(2, 1, judged_ago=None)  # valid without judged_at (set by hand)
    old = seed_calls(3, 1, judged_ago=3600)  # before high-water - margin: outside the range
    # the range reads two; the sweep, in the same transaction, the one below it, first
    assert allocate(user_prop_target) == allocation.Allocation(3, 1, found=(old[0],))
    rows = payment_rows(user_prop_target)
    assert set(rows) == {*first, *recent, *unjudged, *old}
    assert rows[old[0]]["id"] < min(rows[c]["id"] for c in (*recent, *unjudged))
    # a wider margin reads them all again; the NOT EXISTS guard keeps every call at one order
    assert allocate(user_prop_target, margin_seconds=7200 + 600).allocated == 0
    assert len(payment_rows(user_prop_target)) == 5


def test_allocation_reads_a_range_of_the_filter_rule_index(user_prop_target, seed_calls):
    seed_calls(1, 3)
    allocate(user_prop_target)
    conn = connect(user_prop_target)
    try:
        plan = allocation.allocation_plan(conn)
    finally:
        conn.close()
    calls = next(row for row in plan if row["table"] == "c")
    assert calls["key"] == "idx_filter_rule" and calls["type"] == "range"
    payments = next(row for row in plan if row["table"] == "p")
    assert payments["key"] == "uk_call_id"


def test_allocation_and_its_sweep_wait_for_the_judge_lock(user_prop_target, seed_calls):
    seed_calls(1, 1)
    judge = connect(user_prop_target)
    try:
        with judge_lock(judge, 5):
            with pytest.raises(JudgeLockTimeout):
                allocate(user_prop_target, lock_timeout=1)
            assert payment_rows(user_prop_target) == {}
            assert high_water(user_prop_target) is None
        assert allocate(user_prop_target).allocated == 1
        missed = seed_calls(1, 1, judged_ago=3600)  # behind the high-water: the sweep's
        with judge_lock(judge, 5):
            with pytest.raises(JudgeLockTimeout):
                allocate(user_prop_target, lock_timeout=1)
            assert missed[0] not in payment_rows(user_prop_target), "swept without the lock"
    finally:
        judge.close()
    assert allocate(user_prop_target) == allocation.Allocation(1, 1, found=(missed[0],))


def test_a_charge_pass_sweeps_under_the_judge_lock_in_the_allocation_transaction(
    billing_env, user_prop_target, payment_center, seed_calls
):
    """While a judge holds its lock, the pass neither sweeps nor allocates: a call being judged
    cannot be read by both, and both read the high-water the allocation moves."""
    payment_center.set_account(42, 10 * PRICE_FEN)
    seed_calls(42, 1)
    assert charge_task().execute({})["allocated"] == 1
    missed = seed_calls(42, 1, judged_ago=3600)
    fresh = seed_calls(42, 1)
    charging = Worker(lambda: charge_task().execute({}), name="charging")
    judge = connect(user_prop_target)
    try:
        with judge_lock(judge, 30):
            charging.start()
            wait_until(
                lambda: waiting_for_a_named_lock(judge) or charging.done(),
                30,
                "the charging pass to wait for the judge's lock",
            )
            assert not charging.done()
            rows = payment_rows(user_prop_target)
            assert missed[0] not in rows and fresh[0] not in rows, "swept outside the lock"
    finally:
        judge.close()
    result = charging.join(60)
    assert (result["allocated"], result["found_by_sweep"], result["success"]) == (2, 1, 2)
    assert payment_center.full_state()["double_charged"] == []


def waiting_for_a_named_lock(conn) -> bool:
    """Another session of this database is blocked in GET_LOCK."""
    return other_sessions_running(conn, "%GET_LOCK%") > 0


def charge_task():
    return ChargeValidCallsOperator(task_id="charge_valid_calls", workers=4)


def step_high_water_forward(target, seconds: int) -> None:
    """As if the database clock went back ``seconds`` after the last allocation."""
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE job_cursor SET position_time = NOW() + INTERVAL %s SECOND WHERE name = %s",
                (seconds, allocation.ALLOCATION_CURSOR),
            )
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["judged_behind_the_high_water", "high_water_in_the_future"])
def test_a_clock_step_back_leaves_no_valid_call_without_an_order(
    billing_env, user_prop_target, payment_center, seed_calls, caplog, how
):
    payment_center.set_account(41, 10 * PRICE_FEN)
    seed_calls(41, 1)
    assert charge_task().execute({})["allocated"] == 1

    if how == "judged_behind_the_high_water":  # judged after the step: an hour "earlier"
        late = seed_calls(41, 1, judged_ago=3600)
    else:
        step_high_water_forward(user_prop_target, 86400)
        late = seed_calls(41, 1)
    caplog.clear()
    result = charge_task().execute({})
    rows = payment_rows(user_prop_target)
    assert late[0] in rows, "a valid call judged behind the high-water got no order"
    assert rows[late[0]]["status"] == "success"
    assert (result["allocated"], result["found_by_sweep"], result["success"]) == (1, 1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("1 valid call(s)" in w and late[0] in w for w in warnings), warnings

    again = charge_task().execute({})
    assert (again["allocated"], again["found_by_sweep"]) == (0, 0)
    assert payment_center.full_state()["double_charged"] == []


def test_the_sweep_reads_an_index_range_that_allocation_empties(user_prop_target, seed_calls):
    seed_calls(1, 3)
    allocate(user_prop_target)
    conn = connect(user_prop_target)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT DISTINCT order_allocated FROM {store.CALL_LOG}")
            assert cur.fetchall() == ((1,),), "flagged in the allocation's transaction"
        plan = allocation.sweep_plan(conn)
    finally:
        conn.close()
    calls = next(row for row in plan if (row["table"], row["select_type"]) == ("c", "DERIVED"))
    assert calls["key"] == "idx_unallocated" and calls["type"] in ("ref", "range")
    payments = next(row for row in plan if row["table"] == "p")
    assert payments["key"] == "uk_call_id"


def test_with_no_high_water_the_calls_are_allocated_a_batch_per_transaction(
    user_prop_target, seed_calls
):
    """The first run, or after the high-water was deleted: the (1, 0) range of idx_unallocated,
    however the calls were judged, at most ``batch`` calls per transaction under the judge lock;
    the high-water is set by the transaction that finds the range exhausted."""
    calls = seed_calls(1, 12, judged_ago=7200) + seed_calls(2, 13, judged_ago=None)
    result = allocate(user_prop_target, batch=10)
    assert (result.allocated, result.found_by_sweep, result.transactions) == (25, 0, 3)
    assert high_water(user_prop_target) is not None
    rows = payment_rows(user_prop_target)
    assert set(rows) == set(calls)
    by_start = sorted(calls, key=lambda c: rows[c]["id"])
    assert by_start[:10] == calls[:10], "each batch in call order"
    assert allocate(user_prop_target, batch=10) == allocation.Allocation()


WRITE_OFF = (  # docs/payments.md, "A call that cannot be stored"
    f"UPDATE {store.CALL_LOG} c SET c.order_allocated = 2 WHERE c.id = <id> AND c.filter_rule = 1 "
    f"AND c.order_allocated = 0 AND NOT EXISTS (SELECT 1 FROM {store.PAYMENT_LOG} p WHERE "
    "p.call_id = c.call_id)"
)
# Values our DDL cannot hold but a wider call log can (a column widened by hand, a table
# older than ours): each must be left out and reported, never fail every other call.
BAD_CALLS = [
    ("x" * 100, 52, "normal"),  # call_id longer than the payment log's 64
    ("no-sublessor", None, "normal"),
    ("negative-sublessor", -1, "normal"),
    ("huge-sublessor", 5_000_000_000, "normal"),
    ("zero-sublessor", 0, "normal"),
    ("no-type", 52, None),
    ("long-type", 52, "t" * 20),
]


def widen_call_log(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = %s AND COLUMN_NAME = 'call_id'",
            (store.CALL_LOG,),
        )
        (collation,) = cur.fetchone()
        cur.execute(
            f"ALTER TABLE {store.CALL_LOG} MODIFY call_id VARCHAR(255) CHARACTER SET utf8mb4 "
            f"COLLATE {collation} NOT NULL, MODIFY sublessor_id BIGINT NULL, "
            "MODIFY call_type VARCHAR(32) NULL DEFAULT 'normal'"
        )
        for n, (call_id, sublessor_id, call_type) in enumerate(BAD_CALLS):
            cur.execute(
                f"INSERT INTO {store.CALL_LOG} (call_id, sublessor_id, caller, called, status, "
                "start_time, duration, call_type, filter_rule, judged_at) VALUES (%s, %s, "
                "'13800000000', '4008001234', 1, TIMESTAMPADD(SECOND, %s, '2026-03-01'), 60, %s, "
                "1, NOW(3))",
                (call_id, sublessor_id, n, call_type),
            )
    conn.commit()


def test_a_call_that_cannot_be_stored_fails_the_task_after_every_other_call_is_charged(
    billing_env, user_prop_target, user_prop_conn, payment_center, seed_calls, caplog
):
    payment_center.set_account(51, 10 * PRICE_FEN)
    payment_center.set_account(52, 10 * PRICE_FEN)
    widen_call_log(user_prop_conn)
    good = seed_calls(51, 2)

    with pytest.raises(AirflowFailException) as failed:
        charge_task().execute({})
    message = str(failed.value)
    assert message.startswith(f"{len(BAD_CALLS)} valid call(s)"), message
    assert "'no-sublessor'" in message and "x" * 64 in message and "order_allocated = 2" in message
    rows = payment_rows(user_prop_target)
    assert set(rows) == set(good) and {r["status"] for r in rows.values()} == {"success"}
    warning = next(
        r.getMessage() for r in caplog.records if "cannot be given an order" in r.getMessage()
    )
    assert "no-sublessor" in warning

    with user_prop_conn.cursor() as cur:  # someone repairs one row: the next pass charges it
        cur.execute(f"UPDATE {store.CALL_LOG} SET sublessor_id = 52 WHERE call_id = 'no-sublessor'")
    user_prop_conn.commit()
    with pytest.raises(AirflowFailException, match=f"^{len(BAD_CALLS) - 1} valid call"):
        charge_task().execute({})
    assert payment_rows(user_prop_target)["no-sublessor"]["status"] == "success"


def test_a_written_off_call_is_never_charged_nor_reported(
    billing_env, user_prop_target, user_prop_conn, payment_center, seed_calls
):
    payment_center.set_account(53, 10 * PRICE_FEN)
    widen_call_log(user_prop_conn)
    seed_calls(53, 1)
    with pytest.raises(AirflowFailException) as failed:
        charge_task().execute({})
    assert WRITE_OFF in str(failed.value), "the error names the write-off"
    fits = seed_calls(53, 1)  # valid and storable, but an operator decides it is not to be charged
    (charged,) = [c for c in payment_rows(user_prop_target)]
    with user_prop_conn.cursor() as cur:  # reset by hand: its order exists, it is no write-off
        cur.execute(
            f"UPDATE {store.CALL_LOG} SET order_allocated = 0 WHERE call_id = %s", (charged,)
        )
        cur.execute(
            f"SELECT id FROM {store.CALL_LOG} WHERE call_id IN %s",
            ([*fits, charged, *(c for c, _, _ in BAD_CALLS)],),
        )
        ids = [r[0] for r in cur.fetchall()]
    user_prop_conn.commit()
    write_off = WRITE_OFF.replace("<id>", "%s")
    written_off = 0
    with user_prop_conn.cursor() as cur:  # what the error tells the operator to run, for each id
        for row_id in ids:
            written_off += cur.execute(write_off, (row_id,))
    user_prop_conn.commit()
    assert written_off == len(BAD_CALLS) + 1, "not the call that has its order"

    result = charge_task().execute({})
    assert (result["allocated"], result["unallocatable_calls"]) == (0, 0)
    assert fits[0] not in payment_rows(user_prop_target)
    step_high_water_forward(user_prop_target, 86400)  # every written-off call is below it now
    assert charge_task().execute({})["found_by_sweep"] == 0
    assert fits[0] not in payment_rows(user_prop_target)
    with user_prop_conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {store.CALL_LOG} WHERE order_allocated = 2")
        assert cur.fetchone()[0] == len(BAD_CALLS) + 1, "a write-off is never undone"
    user_prop_conn.rollback()
