"""Pending orders as the page, the API and the alerts count them (one definition).

An order is *pending* when its row is ``status = 'pending'`` with an id the
payment center accepts (``id >= ORDER_ID_MIN``): charging sends it. A pending
row below ``ORDER_ID_MIN`` is *held back*: charging never sends it and fails with
``OrderIdOutOfRange`` until it is repaired (docs/payments.md). Both are ranges
of ``idx_status (status, id)``.
"""

from __future__ import annotations

from typing import Any

from sublessor_billing.calls.store import call_id_for_display
from sublessor_billing.db.tables import PAYMENT_LOG
from sublessor_billing.payments.outcomes import ORDER_ID_MIN

_PENDING = f"FROM {PAYMENT_LOG} WHERE status = 'pending' AND id >= {ORDER_ID_MIN}"
_HELD_BACK = f"FROM {PAYMENT_LOG} WHERE status = 'pending' AND id < {ORDER_ID_MIN}"
_COLUMNS = "id, call_id, sublessor_id, amount, attempts, last_error, created_at"
_KEYS = (
    "order_id",
    "call_id",
    "sublessor_id",
    "amount_fen",
    "attempts",
    "last_error",
    "created_at",
)
HELD_BACK_RUNBOOK = "docs/payments.md 'Order ids below 820000000000' (OrderIdOutOfRange)"


def pending_orders(cur: Any, *, limit: int = 10) -> dict:
    """Orders charging sends, still pending (any day): count, the oldest (by created_at), the first rows."""
    cur.execute(f"SELECT COUNT(*) {_PENDING}")
    count = int(cur.fetchone()[0])
    cur.execute(
        f"SELECT id, created_at, TIMESTAMPDIFF(SECOND, created_at, NOW(3)) {_PENDING}"
        " ORDER BY created_at, id LIMIT 1"
    )
    oldest = cur.fetchone()
    cur.execute(f"SELECT {_COLUMNS} {_PENDING} ORDER BY id LIMIT %s", (limit,))
    return {
        "count": count,
        "oldest_order_id": int(oldest[0]) if oldest else None,
        "oldest_created_at": oldest[1] if oldest else None,
        "oldest_age_seconds": int(oldest[2]) if oldest else None,
        "oldest": _rows(cur.fetchall()),
    }


def held_back_orders(cur: Any, *, limit: int = 20) -> dict:
    """Pending rows below ORDER_ID_MIN (never sent): count and the first ids."""
    cur.execute(f"SELECT COUNT(*) {_HELD_BACK}")
    count = int(cur.fetchone()[0])
    cur.execute(f"SELECT id {_HELD_BACK} ORDER BY id LIMIT %s", (limit,))
    return {"count": count, "ids": [int(row[0]) for row in cur.fetchall()]}


def _rows(rows: Any) -> list[dict]:
    found = [dict(zip(_KEYS, row, strict=True)) for row in rows]
    for row in found:
        row["call_id"] = call_id_for_display(row["call_id"])
    return found
