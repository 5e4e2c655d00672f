"""All SQL of the money path: allocate order ids, read pending work, record outcomes atomically.

Every write is guarded by ``status = 'pending'``, so recording an answer twice
(or an answer for a row someone already settled) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sublessor_billing.calls.judge import judge_lock
from sublessor_billing.payments.decisions import record_decisions
from sublessor_billing.payments.outcomes import PENDING, Outcome, PendingOrder

PAYMENT_LOG = "sublessor_call_payment_log_201409"
CALL_LOG = "sublessor_call_log_201409"

# Order ids come from the payment log's AUTO_INCREMENT, handed out in call order,
# so a sublessor's calls are charged in the order they were made. Only calls
# judged valid since the high-water (minus a margin) are read, through
# idx_filter_rule (filter_rule, judged_at, start_time, id), shared with the
# judge; NULL judged_at (set by hand) is a second, normally empty, range of it.
# The first run has no high-water and reads every valid call. payments/sweep.py
# reads the rest, whatever the clock did (docs/payments.md, "Sweep").
ALLOCATION_CURSOR = "payment_allocation"
ALLOCATION_MARGIN_SECONDS = 600
# What a call gives its payment row must fit there unchanged (001: call_id
# VARCHAR(64), sublessor_id INT UNSIGNED, call_type VARCHAR(16); subject is
# 9 + 64 of 128): a call that does not is left out and reported, never failing
# the INSERT of every other call. Written so that it is never NULL.
FITS_PAYMENT_LOG = """c.call_id IS NOT NULL AND CHAR_LENGTH(c.call_id) <= 64
  AND c.sublessor_id IS NOT NULL AND c.sublessor_id BETWEEN 1 AND 4294967295
  AND c.call_type IS NOT NULL AND CHAR_LENGTH(c.call_type) <= 16"""
NO_ORDER = f"NOT EXISTS (SELECT 1 FROM {PAYMENT_LOG} p WHERE p.call_id = c.call_id)"
INSERT_ORDERS = (
    f"INSERT INTO {PAYMENT_LOG} (call_id, sublessor_id, amount, subject, call_type, status)"
)
ORDER_VALUES = (
    "SELECT c.call_id, c.sublessor_id, %s, CONCAT('400 call ', c.call_id), c.call_type, 'pending'"
)
# Same transaction as the INSERT: (1, 0) of idx_unallocated keeps only calls without an order.
MARK_ALLOCATED = f"""
UPDATE {CALL_LOG} c FORCE INDEX (idx_unallocated) JOIN {PAYMENT_LOG} p ON p.call_id = c.call_id
SET c.order_allocated = 1 WHERE c.filter_rule = 1 AND c.order_allocated = 0
"""
_ALLOCATE_SELECT = f"""
{ORDER_VALUES}
FROM {CALL_LOG} c FORCE INDEX (idx_filter_rule)
WHERE c.filter_rule = 1
  AND (%s IS NULL OR c.judged_at IS NULL OR c.judged_at >= %s - INTERVAL %s SECOND)
  AND {NO_ORDER} AND {FITS_PAYMENT_LOG}
ORDER BY c.start_time, c.id
"""
_HIGH_WATER = "SELECT position_time FROM job_cursor WHERE name = %s FOR UPDATE"
_SET_HIGH_WATER = """
INSERT INTO job_cursor (name, position_time) VALUES (%s, %s)
ON DUPLICATE KEY UPDATE position_time = VALUES(position_time)
"""

_PENDING = f"""
SELECT id, sublessor_id, amount, subject FROM {PAYMENT_LOG}
WHERE status = 'pending' ORDER BY sublessor_id, id
"""

_SETTLE = f"""
UPDATE {PAYMENT_LOG} p JOIN ({{rows}}) v ON p.id = v.id
SET p.status = v.status, p.result_code = v.result_code, p.result_message = v.message,
    p.balance_after = v.balance, p.attempts = p.attempts + 1, p.last_error = v.error,
    p.sent_at = NOW(3), p.settled_at = NOW(3)
WHERE p.status = 'pending'
"""
_SETTLE_ROW = (
    "SELECT %s AS id, %s AS status, %s AS result_code, %s AS message, %s AS balance, %s AS error"
)

_STILL_PENDING = f"""
UPDATE {PAYMENT_LOG} p JOIN ({{rows}}) v ON p.id = v.id
SET p.attempts = p.attempts + v.sent, p.last_error = v.error,
    p.result_code = COALESCE(v.result_code, p.result_code),
    p.sent_at = IF(v.sent = 1, NOW(3), p.sent_at)
WHERE p.status = 'pending'
"""
_STILL_PENDING_ROW = "SELECT %s AS id, %s AS sent, %s AS error, %s AS result_code"


def allocate_orders(
    conn: Any,
    amount_fen: int,
    *,
    margin_seconds: int = ALLOCATION_MARGIN_SECONDS,
    lock_timeout: int = 300,
) -> int:
    """Phase 1: give every newly valid call a pending order (one transaction); return how many.

    Holds the judge's named lock, so no judge transaction is in flight: every
    call judged before ``NOW(3)`` (read first) is committed and seen. The
    high-water moves to that time in the same transaction as the inserts.
    """
    with judge_lock(conn, lock_timeout):
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT NOW(3)")
                started = cur.fetchone()[0]
                cur.execute(_HIGH_WATER, (ALLOCATION_CURSOR,))
                row = cur.fetchone()
                high_water = row[0] if row else None
                inserted = cur.execute(
                    INSERT_ORDERS + _ALLOCATE_SELECT,
                    (amount_fen, high_water, high_water, int(margin_seconds)),
                )
                cur.execute(MARK_ALLOCATED)
                cur.execute(_SET_HIGH_WATER, (ALLOCATION_CURSOR, started))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return int(inserted)


def high_water(conn: Any) -> Any:
    """The allocation high-water (DB time of the last completed allocation), None before the first."""
    with conn.cursor() as cur:
        cur.execute("SELECT position_time FROM job_cursor WHERE name = %s", (ALLOCATION_CURSOR,))
        row = cur.fetchone()
    return row[0] if row else None


def explain(conn: Any, sql: str, params: Sequence[Any]) -> list[dict]:
    """EXPLAIN of one statement as a list of dicts (bench, tests)."""
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        cols = [d[0] for d in cur.description]
        plan = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    conn.commit()
    return plan


def allocation_plan(conn: Any, *, margin_seconds: int = ALLOCATION_MARGIN_SECONDS) -> list[dict]:
    """EXPLAIN of the allocation's SELECT against the current high-water (bench, tests)."""
    position = high_water(conn)
    return explain(conn, _ALLOCATE_SELECT, (0, position, position, margin_seconds))


def load_pending(conn: Any) -> list[PendingOrder]:
    with conn.cursor() as cur:
        cur.execute(_PENDING)
        rows = cur.fetchall()
    conn.commit()  # end the read snapshot
    return [PendingOrder(int(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]


def _union(template: str, rows: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    params = [value for row in rows for value in row]
    return " UNION ALL ".join([template] * len(rows)), params


def record_outcomes(
    conn: Any, outcomes: Iterable[Outcome], *, price_fen: int, decided: set[int]
) -> tuple[list[Outcome], int]:
    """Write one batch of answers and the offline decisions they cause, in one transaction.

    The decisions follow ``decisions.record_decisions``. ``decided`` gets the
    sublessors that got a new decision (updated in place, for the caller's
    bookkeeping; the table, not this set, decides). Returns the outcomes that
    actually settled a pending row and the number of offline decisions recorded.
    """
    outcomes = list(outcomes)
    if not outcomes:
        return [], 0
    with conn.cursor() as cur:
        ids = [o.order_id for o in outcomes]
        cur.execute(
            f"SELECT id FROM {PAYMENT_LOG} WHERE id IN ({','.join(['%s'] * len(ids))}) "
            "AND status = 'pending' FOR UPDATE",
            ids,
        )
        open_ids = {int(r[0]) for r in cur.fetchall()}
        settled = [o for o in outcomes if o.status != PENDING and o.order_id in open_ids]
        waiting = [o for o in outcomes if o.status == PENDING and o.order_id in open_ids]
        if settled:
            sql, params = _union(
                _SETTLE_ROW,
                [
                    (o.order_id, o.status, o.result_code, o.message, o.balance, o.error)
                    for o in settled
                ],
            )
            cur.execute(_SETTLE.format(rows=sql), params)
        if waiting:
            sql, params = _union(
                _STILL_PENDING_ROW,
                [(o.order_id, int(o.sent), (o.error or "")[:512], o.result_code) for o in waiting],
            )
            cur.execute(_STILL_PENDING.format(rows=sql), params)
        new_decisions = record_decisions(cur, settled, price_fen)
    conn.commit()
    decided.update(new_decisions)
    return settled, len(new_decisions)


def pending_orders(conn: Any, limit: int = 50) -> tuple[int, list[tuple[int, str]]]:
    """How many rows are still pending in the table, and ``(order id, last_error)`` of the first ``limit``."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {PAYMENT_LOG} WHERE status = 'pending'")
        total = int(cur.fetchone()[0])
        cur.execute(
            f"SELECT id, last_error FROM {PAYMENT_LOG} WHERE status = 'pending' ORDER BY id LIMIT %s",
            (limit,),
        )
        rows = [(int(r[0]), str(r[1] or "never sent")) for r in cur.fetchall()]
    conn.commit()
    return total, rows


def unresolved_reused_orders(conn: Any, limit: int = 50) -> list[tuple[int, int]]:
    """``(order id, sublessor)`` of 1004 rows nobody has checked yet (``last_error`` still set)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id, sublessor_id FROM {PAYMENT_LOG} WHERE status = 'failed' "
            "AND result_code = 1004 AND last_error IS NOT NULL ORDER BY id LIMIT %s",
            (limit,),
        )
        rows = [(int(r[0]), int(r[1])) for r in cur.fetchall()]
    conn.commit()
    return rows


def count_by_status(conn: Any) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT status, COUNT(*) FROM {PAYMENT_LOG} GROUP BY status")
        rows = cur.fetchall()
    conn.commit()
    return {str(s): int(n) for s, n in rows}
