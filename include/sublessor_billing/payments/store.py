"""SQL of the payment log: the fragments allocation shares, pending work, outcomes recorded atomically.

Allocation itself (order ids for valid calls) is ``payments/allocation.py``.

Every write is guarded by ``status = 'pending'``, so recording an answer twice
(or an answer for a row someone already settled) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import CALL_LOG as CALL_LOG  # re-exported: benches, tests
from sublessor_billing.db.tables import PAYMENT_LOG
from sublessor_billing.db.transaction import retry_on_lock_conflict, transaction
from sublessor_billing.payments.decisions import record_decisions
from sublessor_billing.payments.outcomes import ChargeCode, Outcome, PaymentStatus, PendingOrder

# Deadlock / lock wait timeout while recording answers (charge shards record at the
# same time and both lock gaps of sublessor_offline_event): rolled back and written again.
RECORD_ATTEMPTS = 3

# What a call gives its payment row must fit there unchanged (001: call_id
# VARCHAR(64), sublessor_id INT UNSIGNED, call_type VARCHAR(16); subject is
# 9 + 64 of 128): a call that does not is left out and reported, never failing
# the INSERT of every other call. Written so that it is never NULL.
FITS_PAYMENT_LOG = """c.call_id IS NOT NULL AND CHAR_LENGTH(c.call_id) <= 64
  AND c.sublessor_id IS NOT NULL AND c.sublessor_id BETWEEN 1 AND 4294967295
  AND c.call_type IS NOT NULL AND CHAR_LENGTH(c.call_type) <= 16"""
# A call without an order: an anti-join that looks each call's payment row up by
# uk_call_id (eq_ref), so no size of either table turns it into a scan of the
# payment log (a NOT EXISTS may be materialized: a full read of uk_call_id).
WITHOUT_ORDER = f"LEFT JOIN {PAYMENT_LOG} p FORCE INDEX (uk_call_id) ON p.call_id = c.call_id"
NO_ORDER = "p.id IS NULL"
# No IGNORE, and that is accepted: a payment row for one of the round's calls
# written meanwhile (by hand, or by the legacy system during the cutover) makes
# the INSERT fail on uk_call_id (duplicate call_id). The round rolls back whole
# (nothing was sent; no order id is kept) and the pass fails; the next pass's
# anti-join sees that row and leaves the call out (the daily check flags it). An
# IGNORE would also turn a value that does not fit into a warning and a stored
# row that differs from what is sent.
INSERT_ORDERS = (
    f"INSERT INTO {PAYMENT_LOG} (call_id, sublessor_id, amount, subject, call_type, status)"
)
ORDER_VALUES = (
    "SELECT c.call_id, c.sublessor_id, %s, CONCAT('400 call ', c.call_id), c.call_type, 'pending'"
)
_PENDING = f"""
SELECT id, sublessor_id, amount, subject FROM {PAYMENT_LOG}
WHERE status = 'pending' AND MOD(sublessor_id, %s) = %s ORDER BY sublessor_id, id
"""


@dataclass(frozen=True)
class Shard:
    """The sublessors one charging pass settles: ``sublessor_id % count == index``.

    A sublessor's orders are all in one shard, so the order they are charged in
    holds whatever the shards do in parallel. ``ALL`` (0 of 1) is every sublessor.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: need 0 <= index < count")

    @property
    def params(self) -> tuple[int, int]:
        return (self.count, self.index)

    def __str__(self) -> str:
        return "all sublessors" if self.count == 1 else f"shard {self.index} of {self.count}"


ALL = Shard()

_SETTLE = f"""
UPDATE {PAYMENT_LOG} p JOIN ({{rows}}) v ON p.id = v.id
SET p.status = v.status, p.result_code = v.result_code, p.result_message = v.message,
    p.balance_after = v.balance, p.attempts = p.attempts + v.attempts, p.last_error = v.error,
    p.sent_at = NOW(3), p.settled_at = NOW(3)
WHERE p.status = 'pending'
"""
_SETTLE_ROW = (
    "SELECT %s AS id, %s AS status, %s AS result_code, %s AS message, %s AS balance, "
    "%s AS error, %s AS attempts"
)

_STILL_PENDING = f"""
UPDATE {PAYMENT_LOG} p JOIN ({{rows}}) v ON p.id = v.id
SET p.attempts = p.attempts + v.attempts, p.last_error = v.error,
    p.result_code = COALESCE(v.result_code, p.result_code),
    p.sent_at = IF(v.attempts > 0, NOW(3), p.sent_at)
WHERE p.status = 'pending'
"""
_STILL_PENDING_ROW = "SELECT %s AS id, %s AS attempts, %s AS error, %s AS result_code"


def explain(conn: Any, sql: str, params: Sequence[Any]) -> list[dict]:
    """EXPLAIN of one statement as a list of dicts (bench, tests)."""
    with transaction(conn) as cur:
        cur.execute("EXPLAIN " + sql, params)
        cols = [d[0] for d in cur.description]
        plan = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return plan


def load_pending(conn: Any, shard: Shard = ALL) -> list[PendingOrder]:
    with transaction(conn) as cur:  # its commit ends the read snapshot
        cur.execute(_PENDING, shard.params)
        rows = cur.fetchall()
    return [PendingOrder(int(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]


def _union(template: str, rows: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
    params = [value for row in rows for value in row]
    return " UNION ALL ".join([template] * len(rows)), params


def record_outcomes(
    conn: Any, outcomes: Iterable[Outcome], *, price_fen: int
) -> tuple[list[Outcome], list[int]]:
    """Write one batch of answers and the offline decisions they cause, in one transaction.

    The decisions follow ``decisions.record_decisions``. Returns the outcomes that
    actually settled a pending row and the sublessors that got a new offline decision.
    """
    outcomes = list(outcomes)
    if not outcomes:
        return [], []
    return retry_on_lock_conflict(
        lambda: _record_once(conn, outcomes, price_fen),
        attempts=RECORD_ATTEMPTS,
        what=f"Recording a batch of {len(outcomes)} answer(s)",
    )


def _record_once(
    conn: Any, outcomes: list[Outcome], price_fen: int
) -> tuple[list[Outcome], list[int]]:
    with transaction(conn) as cur:
        ids = [o.order_id for o in outcomes]
        cur.execute(
            f"SELECT id FROM {PAYMENT_LOG} WHERE id IN ({marks(ids)}) "
            "AND status = 'pending' FOR UPDATE",
            ids,
        )
        open_ids = {int(r[0]) for r in cur.fetchall()}
        pending = PaymentStatus.PENDING
        settled = [o for o in outcomes if o.status != pending and o.order_id in open_ids]
        waiting = [o for o in outcomes if o.status == pending and o.order_id in open_ids]
        if settled:
            sql, params = _union(
                _SETTLE_ROW,
                [
                    (o.order_id, o.status, o.result_code, o.message, o.balance, o.error, o.attempts)
                    for o in settled
                ],
            )
            cur.execute(_SETTLE.format(rows=sql), params)
        if waiting:
            sql, params = _union(
                _STILL_PENDING_ROW,
                [(o.order_id, o.attempts, (o.error or "")[:512], o.result_code) for o in waiting],
            )
            cur.execute(_STILL_PENDING.format(rows=sql), params)
        new_decisions = record_decisions(cur, settled, price_fen)
    return settled, new_decisions


def pending_orders(
    conn: Any, limit: int = 50, *, min_id: int = 0, shard: Shard = ALL
) -> tuple[int, list[tuple[int, str]]]:
    """How many rows of ``shard`` from ``min_id`` up are still pending, and ``(order id, last_error)`` of the first ``limit``."""
    where = (
        f"FROM {PAYMENT_LOG} WHERE status = 'pending' AND id >= %s AND MOD(sublessor_id, %s) = %s"
    )
    with transaction(conn) as cur:
        cur.execute(f"SELECT COUNT(*) {where}", (min_id, *shard.params))
        total = int(cur.fetchone()[0])
        cur.execute(
            f"SELECT id, last_error {where} ORDER BY id LIMIT %s", (min_id, *shard.params, limit)
        )
        rows = [(int(r[0]), str(r[1] or "never sent")) for r in cur.fetchall()]
    return total, rows


def unresolved_reused_orders(
    conn: Any, limit: int = 50, *, shard: Shard = ALL
) -> list[tuple[int, int]]:
    """``(order id, sublessor)`` of 1004 rows of ``shard`` nobody has checked yet (``last_error`` set)."""
    with transaction(conn) as cur:
        cur.execute(
            f"SELECT id, sublessor_id FROM {PAYMENT_LOG} WHERE status = 'failed' "
            f"AND result_code = {ChargeCode.ORDER_REUSED:d} AND last_error IS NOT NULL "
            "AND MOD(sublessor_id, %s) = %s ORDER BY id LIMIT %s",
            (*shard.params, limit),
        )
        rows = [(int(r[0]), int(r[1])) for r in cur.fetchall()]
    return rows


def count_by_status(conn: Any) -> dict[str, int]:
    with transaction(conn) as cur:
        cur.execute(f"SELECT status, COUNT(*) FROM {PAYMENT_LOG} GROUP BY status")
        rows = cur.fetchall()
    return {str(s): int(n) for s, n in rows}
