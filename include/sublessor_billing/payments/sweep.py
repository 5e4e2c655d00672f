"""The allocation sweep: every valid call without an order gets one, whatever the DB clock did.

The high-water allocation (``allocation.allocate_orders``) reads the calls judged
since the high-water minus a margin: a clock step back of more than the margin
(NTP correction, VM restore) stamps calls below that range. The sweep reads the
rest: valid calls without an order judged before high-water - margin. It runs
inside the allocation's transaction, under the judge's lock, against the same
high-water, so both together read every ``judged_at`` and no call judged
meanwhile can be read by both. It costs an index range that is empty in normal
operation: ``order_allocated`` is set in the transaction that writes a call's
payment row, so (filter_rule 1, order_allocated 0) of ``idx_unallocated`` only
holds the calls just judged and the ones missed (docs/payments.md).

With no high-water (the first allocation, or after its ``job_cursor`` row was
deleted) the sweep without its ``judged_at`` bound IS the allocation: every
(1, 0) call, whenever it was judged. Either way it reads at most ``limit`` calls
in ``idx_unallocated`` order (``ORDER BY id LIMIT``), so one transaction stays
bounded; the allocation runs another while one came back full.

While the history is being flagged (``payments/flags.py``), the part of it that
flagging has not reached yet (ids in ``(after, upto]``, ``flags.sweep_skip``) still
holds every call charged before migration 080 at (1, 0): the sweep and the
unallocatable count skip it. Below flagging's position, what is left at (1, 0)
is the calls without an order, read as usual.

A valid call whose values cannot be stored in its payment row (``FITS_PAYMENT_LOG``)
is never allocated; it is counted on every pass (the charge task fails at the end
of its pass) until someone repairs the row or writes it off (``order_allocated = 2``).
"""

from __future__ import annotations

from typing import Any

from sublessor_billing.db.tables import CALL_LOG
from sublessor_billing.payments.store import (
    FITS_PAYMENT_LOG,
    INSERT_ORDERS,
    NO_ORDER,
    ORDER_VALUES,
    WITHOUT_ORDER,
)

# The calls outside the part of the history not flagged yet: two ranges of
# idx_unallocated's id suffix, read in id order. Parameters: after, upto.
OUTSIDE_SKIP = "(c.id <= %s OR c.id > %s)"
# The first ``limit`` calls of the range in id order (an index-order read that
# stops there), then given their order ids in call order (start_time, id).
# Parameters: amount, after, upto, high-water, high-water, margin, limit.
SWEEP_SELECT = f"""
{ORDER_VALUES}
FROM (
  SELECT c.id FROM {CALL_LOG} c FORCE INDEX (idx_unallocated) {WITHOUT_ORDER}
  WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND {OUTSIDE_SKIP}
    AND (%s IS NULL OR c.judged_at < %s - INTERVAL %s SECOND)
    AND {NO_ORDER} AND {FITS_PAYMENT_LOG}
  ORDER BY c.id LIMIT %s
) missed
JOIN {CALL_LOG} c FORCE INDEX (PRIMARY) ON c.id = missed.id
ORDER BY c.start_time, c.id"""
_UNFIT = f"""
FROM {CALL_LOG} c FORCE INDEX (idx_unallocated) {WITHOUT_ORDER}
WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND {OUTSIDE_SKIP}
  AND {NO_ORDER} AND NOT ({FITS_PAYMENT_LOG})"""
UNFIT_WHY = (
    "call_id NULL or longer than 64, sublessor_id not in 1..4294967295, or call_type NULL "
    "or longer than 16"
)


def sweep_params(
    amount_fen: int, high_water: Any, margin: int, skip: tuple[int, int], limit: int
) -> tuple:
    after, upto = skip
    return (amount_fen, int(after), int(upto), high_water, high_water, int(margin), int(limit))


def sweep_missed(
    cur: Any,
    amount_fen: int,
    high_water: Any,
    margin_seconds: int,
    *,
    skip: tuple[int, int],
    limit: int,
) -> int:
    """Insert an order for up to ``limit`` valid calls outside ``skip`` below the high-water's
    range (every such call when there is no high-water); return how many.

    Runs inside the allocation's transaction (``cur``), which holds the judge lock.
    """
    params = sweep_params(amount_fen, high_water, margin_seconds, skip, limit)
    return int(cur.execute(INSERT_ORDERS + SWEEP_SELECT, params))


def unfit_calls(
    cur: Any, shown: int, *, skip: tuple[int, int]
) -> tuple[int, list[tuple[int, str]]]:
    """How many valid calls outside ``skip`` cannot be given an order, and ``(id, call_id)`` of
    the first ``shown``."""
    after, upto = int(skip[0]), int(skip[1])
    cur.execute("SELECT COUNT(*)" + _UNFIT, (after, upto))
    total = int(cur.fetchone()[0])
    if not total:
        return 0, []
    cur.execute(
        f"SELECT c.id, LEFT(c.call_id, 64){_UNFIT} ORDER BY c.id LIMIT %s", (after, upto, shown)
    )
    return total, [(int(r[0]), str(r[1])) for r in cur.fetchall()]
