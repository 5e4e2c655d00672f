"""The allocation sweep: every valid call without an order gets one, whatever the DB clock did.

``store.allocate_orders`` reads the calls judged since the high-water minus a
margin: a clock step back of more than the margin (NTP correction, VM restore)
stamps calls below that range. This sweep, run right before it in every pass
(so against the same high-water), reads the rest: valid calls without an order
judged before high-water - margin. Both together read every ``judged_at``, so
no valid call can stay without an order. It costs an index range that is empty
in normal operation: ``order_allocated`` is set in the transaction that writes a
call's payment row, so (filter_rule 1, order_allocated 0) of ``idx_unallocated``
only holds the calls just judged and the ones missed (docs/payments.md).

A valid call whose values cannot be stored in its payment row (``FITS_PAYMENT_LOG``)
is never allocated; it is listed on every pass until someone repairs the row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sublessor_billing.payments.store import (
    ALLOCATION_MARGIN_SECONDS,
    CALL_LOG,
    FITS_PAYMENT_LOG,
    INSERT_ORDERS,
    MARK_ALLOCATED,
    NO_ORDER,
    ORDER_VALUES,
    explain,
    high_water,
)

log = logging.getLogger(__name__)

_MISSED = f"""
FROM {CALL_LOG} c FORCE INDEX (idx_unallocated)
WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND c.judged_at < %s - INTERVAL %s SECOND
  AND {NO_ORDER} AND {FITS_PAYMENT_LOG}"""
_SWEEP_SELECT = f"{ORDER_VALUES}{_MISSED}\nORDER BY c.start_time, c.id"
_UNFIT = f"""
SELECT c.id, LEFT(c.call_id, 64) FROM {CALL_LOG} c FORCE INDEX (idx_unallocated)
WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND {NO_ORDER} AND NOT ({FITS_PAYMENT_LOG})
ORDER BY c.id
"""
SHOWN = 20


@dataclass(frozen=True)
class Sweep:
    found: list[str]  # call ids the high-water range could not reach, allocated now
    unfit: list[tuple[int, str]]  # (call log id, call_id) of valid calls that cannot be

    def as_dict(self) -> dict[str, int]:
        return {"found_by_sweep": len(self.found), "unallocatable_calls": len(self.unfit)}


def sweep_unallocated(
    conn: Any, amount_fen: int, *, margin_seconds: int = ALLOCATION_MARGIN_SECONDS
) -> Sweep:
    """Allocate every valid call below the high-water's range; list the ones that cannot be.

    One transaction. Both counts are 0 in normal operation; each > 0 is logged
    as a warning naming the calls.
    """
    try:
        params = (high_water(conn), int(margin_seconds))
        with conn.cursor() as cur:
            cur.execute("SELECT c.call_id" + _MISSED + " ORDER BY c.id LOCK IN SHARE MODE", params)
            found = [str(r[0]) for r in cur.fetchall()]
            if found:
                cur.execute(INSERT_ORDERS + _SWEEP_SELECT, (amount_fen, *params))
                cur.execute(MARK_ALLOCATED)
            cur.execute(_UNFIT)
            unfit = [(int(r[0]), str(r[1])) for r in cur.fetchall()]
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    if found:
        log.warning(
            "%s valid call(s) judged more than %s s before the allocation high-water had no "
            "order (the database clock went back?); the sweep allocated them now: %s. Check "
            "the clock of the database host.",
            len(found), margin_seconds, ", ".join(found[:SHOWN]),
        )  # fmt: skip
    if unfit:
        log.warning(
            "%s valid call(s) of %s cannot be given an order (call_id NULL or longer than 64, "
            "sublessor_id not in 1..4294967295, or call_type NULL or longer than 16); every "
            "other call is charged. Repair these rows (id, call_id); the next pass allocates "
            "them: %s",
            len(unfit), CALL_LOG, unfit[:SHOWN],
        )  # fmt: skip
    return Sweep(found, unfit)


def sweep_plan(conn: Any, *, margin_seconds: int = ALLOCATION_MARGIN_SECONDS) -> list[dict]:
    """EXPLAIN of the sweep's SELECT at the current high-water (bench, tests)."""
    return explain(conn, _SWEEP_SELECT, (0, high_water(conn), margin_seconds))
