"""What call400_billing has left to do in user_prop_db, in one cheap indexed query.

"Work" that starts a run (runtime.md, "Draining") is messages queued (the
sensor asks the broker) or any of these, found here:

- ``unjudged``: a call not judged yet (``filter_rule = 0 AND judged_at IS NULL``;
  a held call has a ``judged_at``, calls.held, and waits for a person or its
  retry, so it is not work);
- ``unallocated``: a valid call without an order that can be given one (the
  judge committed, the allocation did not run; calls that cannot fit a payment
  row wait for a person, payments.sweep), among the newest of idx_unallocated;
- ``pending_orders``: an order whose outcome is unknown (ids below the range are
  held back for a person, never sent, so not work);
- ``undelivered``: an offline decision the listing service has not confirmed.

A pending order or decision that a pass tried less than ``RETRY_AFTER_S`` ago
(the pass's own retries did not settle it, and the run failed) is not work
yet: the next pass is then at most that much later, not a tight loop of
failing runs while the payment center or listing service is down. Orders
never sent (a crashed pass) are work at once.

Each EXISTS reads one index range that is empty in normal operation
(``explain`` shows which); the sensor runs the query every poll, on a
connection of its own opened for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sublessor_billing.payments.decisions import OFFLINE
from sublessor_billing.payments.outcomes import ORDER_ID_MIN
from sublessor_billing.payments.store import (
    CALL_LOG,
    FITS_PAYMENT_LOG,
    NO_ORDER,
    PAYMENT_LOG,
    WITHOUT_ORDER,
)

RETRY_AFTER_S = 30
# Only the newest entries of the (valid, no order yet) range are looked at: new
# calls are there, and until payments/flags.py has flagged the calls charged
# before migration 080, the range also holds every one of those (with an order).
NEWEST_UNALLOCATED = 100

QUERY = f"""
SELECT
  EXISTS (SELECT 1 FROM {CALL_LOG} FORCE INDEX (idx_filter_rule)
          WHERE filter_rule = 0 AND judged_at IS NULL) AS unjudged,
  EXISTS (SELECT 1 FROM (SELECT id, call_id, sublessor_id, call_type
                        FROM {CALL_LOG} FORCE INDEX (idx_unallocated)
                        WHERE filter_rule = 1 AND order_allocated = 0
                        ORDER BY id DESC LIMIT {NEWEST_UNALLOCATED}) c {WITHOUT_ORDER}
          WHERE {NO_ORDER} AND {FITS_PAYMENT_LOG}) AS unallocated,
  EXISTS (SELECT 1 FROM {PAYMENT_LOG} FORCE INDEX (idx_status)
          WHERE status = 'pending' AND id >= %(min_id)s)
  AND NOT EXISTS (SELECT 1 FROM {PAYMENT_LOG} FORCE INDEX (idx_status)
          WHERE status = 'pending' AND sent_at > NOW(3) - INTERVAL %(retry_after)s SECOND)
    AS pending_orders,
  EXISTS (SELECT 1 FROM {OFFLINE} FORCE INDEX (idx_status) WHERE status = 'pending')
  AND NOT EXISTS (SELECT 1 FROM {OFFLINE} FORCE INDEX (idx_status)
          WHERE status = 'pending' AND attempted_at > NOW(3) - INTERVAL %(retry_after)s SECOND)
    AS undelivered
"""


@dataclass(frozen=True)
class Leftovers:
    unjudged: bool = False
    unallocated: bool = False
    pending_orders: bool = False
    undelivered: bool = False

    def __bool__(self) -> bool:
        return any(asdict(self).values())

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)

    def describe(self) -> str:
        """The kinds of work found, e.g. ``"pending_orders, undelivered"`` (``"none"``)."""
        return ", ".join(name for name, found in asdict(self).items() if found) or "none"


def _params(retry_after_s: float) -> dict[str, Any]:
    return {"min_id": ORDER_ID_MIN, "retry_after": float(retry_after_s)}


def find_leftovers(conn: Any, *, retry_after_s: float = RETRY_AFTER_S) -> Leftovers:
    """Run the query once (read-only; the snapshot is ended before returning)."""
    try:
        with conn.cursor() as cur:
            cur.execute(QUERY, _params(retry_after_s))
            row = cur.fetchone()
    finally:
        conn.rollback()
    return Leftovers(*(bool(value) for value in row))


def explain(conn: Any, *, retry_after_s: float = RETRY_AFTER_S) -> list[dict[str, Any]]:
    """EXPLAIN of the query: one row per table read (tests check each subquery uses its index)."""
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + QUERY, _params(retry_after_s))
        columns = [d[0] for d in cur.description]
        plan = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    conn.rollback()
    return plan
