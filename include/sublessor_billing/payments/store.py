"""All SQL of the money path: allocate order ids, read pending work, record outcomes atomically.

Every write is guarded by ``status = 'pending'``, so recording an answer twice
(or an answer for a row someone already settled) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sublessor_billing.payments.outcomes import (
    PENDING,
    Outcome,
    PendingOrder,
    offline_reason,
    offline_request_id,
    triggers_offline,
)

PAYMENT_LOG = "sublessor_call_payment_log_201409"
CALL_LOG = "sublessor_call_log_201409"
OFFLINE = "sublessor_offline_event"

# Order ids come from the payment log's AUTO_INCREMENT, handed out in call order,
# so a sublessor's calls are charged in the order they were made.
_ALLOCATE = f"""
INSERT INTO {PAYMENT_LOG} (call_id, sublessor_id, amount, subject, call_type, status)
SELECT c.call_id, c.sublessor_id, %s, CONCAT('400 call ', c.call_id), c.call_type, 'pending'
FROM {CALL_LOG} c
WHERE c.filter_rule = 1
  AND NOT EXISTS (SELECT 1 FROM {PAYMENT_LOG} p WHERE p.call_id = c.call_id)
ORDER BY c.start_time, c.id
"""

_PENDING = f"""
SELECT id, sublessor_id, amount, subject FROM {PAYMENT_LOG}
WHERE status = 'pending' ORDER BY sublessor_id, id
"""

_SETTLE = f"""
UPDATE {PAYMENT_LOG} p JOIN ({{rows}}) v ON p.id = v.id
SET p.status = v.status, p.result_code = v.result_code, p.result_message = v.message,
    p.balance_after = v.balance, p.attempts = p.attempts + 1, p.last_error = NULL,
    p.sent_at = NOW(3), p.settled_at = NOW(3)
WHERE p.status = 'pending'
"""
_SETTLE_ROW = "SELECT %s AS id, %s AS status, %s AS result_code, %s AS message, %s AS balance"

_STILL_PENDING = f"""
UPDATE {PAYMENT_LOG} p JOIN ({{rows}}) v ON p.id = v.id
SET p.attempts = p.attempts + v.sent, p.last_error = v.error,
    p.result_code = COALESCE(v.result_code, p.result_code),
    p.sent_at = IF(v.sent = 1, NOW(3), p.sent_at)
WHERE p.status = 'pending'
"""
_STILL_PENDING_ROW = "SELECT %s AS id, %s AS sent, %s AS error, %s AS result_code"

# One decision per sublessor while an earlier one has not been sent yet: a rerun
# after a crash does not add a second decision for the same dry spell.
_DECIDE_OFFLINE = f"""
INSERT IGNORE INTO {OFFLINE} (request_id, sublessor_id, trigger_order_id, reason)
SELECT %s, %s, %s, %s FROM DUAL
WHERE NOT EXISTS (SELECT 1 FROM {OFFLINE} o WHERE o.sublessor_id = %s AND o.status = 'pending')
"""


def allocate_orders(conn: Any, amount_fen: int) -> int:
    """Phase 1: give every valid call without one a pending order (one transaction); return how many."""
    with conn.cursor() as cur:
        inserted = cur.execute(_ALLOCATE, (amount_fen,))
    conn.commit()
    return int(inserted)


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

    ``decided`` holds the sublessors that already got a decision in this pass
    (updated in place). Returns the outcomes that actually settled a pending row
    and the number of offline decisions recorded.
    """
    outcomes = list(outcomes)
    decisions = 0
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
                [(o.order_id, o.status, o.result_code, o.message, o.balance) for o in settled],
            )
            cur.execute(_SETTLE.format(rows=sql), params)
        if waiting:
            sql, params = _union(
                _STILL_PENDING_ROW,
                [(o.order_id, int(o.sent), (o.error or "")[:512], o.result_code) for o in waiting],
            )
            cur.execute(_STILL_PENDING.format(rows=sql), params)
        for o in sorted(settled, key=lambda o: o.order_id):
            if o.sublessor_id in decided or not triggers_offline(o, price_fen):
                continue
            decided.add(o.sublessor_id)
            decisions += cur.execute(
                _DECIDE_OFFLINE,
                (
                    offline_request_id(o.order_id),
                    o.sublessor_id,
                    o.order_id,
                    offline_reason(o),
                    o.sublessor_id,
                ),
            )
    conn.commit()
    return settled, decisions


# -- offline decisions ------------------------------------------------------------------
def load_pending_offline(conn: Any) -> list[tuple[int, str, int, str]]:
    """``(id, request_id, sublessor_id, reason)`` of every decision not yet sent."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id, request_id, sublessor_id, reason FROM {OFFLINE} WHERE status = 'pending' ORDER BY id"
        )
        rows = cur.fetchall()
    conn.commit()
    return [(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def record_offline(conn: Any, event_id: int, *, offlined: int | None, error: str | None) -> None:
    """Mark one decision done (``error`` None) or count a failed attempt."""
    with conn.cursor() as cur:
        if error is None:
            cur.execute(
                f"UPDATE {OFFLINE} SET status = 'done', offlined = %s, attempts = attempts + 1, "
                "last_error = NULL, done_at = NOW(3) WHERE id = %s AND status = 'pending'",
                (offlined, event_id),
            )
        else:
            cur.execute(
                f"UPDATE {OFFLINE} SET attempts = attempts + 1, last_error = %s "
                "WHERE id = %s AND status = 'pending'",
                (error[:512], event_id),
            )
    conn.commit()


def count_by_status(conn: Any) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT status, COUNT(*) FROM {PAYMENT_LOG} GROUP BY status")
        rows = cur.fetchall()
    conn.commit()
    return {str(s): int(n) for s, n in rows}
