"""Phase 1 of charging: every valid call gets one pending order, in bounded transactions.

``allocate_orders`` runs rounds; each round holds the judge's named lock
(``calls/judge.py:judge_lock``), so no judge transaction is in flight, and in ONE
transaction, against ONE high-water (``job_cursor`` row ``payment_allocation``,
read ``FOR UPDATE``):

1. the sweep (``payments/sweep.py``): at most ``batch`` valid calls without an
   order judged before high-water - margin, which the range below cannot reach
   (the DB clock went back, a call set back to 0); with no high-water, at most
   ``batch`` valid calls without an order, however judged: that is the allocation
   of a first run (either way outside the part of the history flagging has not
   reached yet, ``flags.sweep_skip``: those wait until flagging passes them);
2. with a high-water, the calls judged valid since high-water - margin (or with
   no ``judged_at``), through ``idx_filter_rule``;
3. ``order_allocated = 1`` on the calls of every order inserted here (a range of
   the payment log's primary key), which keeps ``idx_unallocated`` small;
4. in the last round, the valid calls that cannot be given an order are counted;
5. the high-water moves to the ``NOW(3)`` read first (with no high-water, only
   once the sweep came back short of ``batch``: every call judged before is read,
   but for the history flagging has not reached: the sweep finds those later).

Another round follows while the sweep came back full; the judge may run between
two rounds. A call judged while a round runs waits for the lock, so it is neither
swept nor allocated twice, and both steps read the same high-water.
``order_allocated``: 0 no order yet, 1 has its order, 2 written off by an
operator (never charged: neither step reads it, nor does the charge task report
it). The high-water's row also counts, in ``position_id``, the calls a repair
command set back to 0 (``hand_back``): the sweep's finds up to that count are
told apart from the missed ones (``released``), and the count is spent by the
next allocation. docs/payments.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sublessor_billing.calls.judge import judge_lock
from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import CALL_LOG, JOB_CURSOR, PAYMENT_LOG
from sublessor_billing.db.transaction import transaction
from sublessor_billing.payments import flags, sweep
from sublessor_billing.payments.store import (
    FITS_PAYMENT_LOG,
    INSERT_ORDERS,
    NO_ORDER,
    ORDER_VALUES,
    WITHOUT_ORDER,
    explain,
)

log = logging.getLogger(__name__)

ALLOCATION_CURSOR = "payment_allocation"
# Covers clock steps of the DB host and position_time being a whole-second DATETIME.
ALLOCATION_MARGIN_SECONDS = 600
BATCH = 10_000  # calls the sweep gives an order per transaction, at most
SHOWN = 20  # call ids named in a log line or an error, at most

# Order ids come from the payment log's AUTO_INCREMENT, handed out in call order,
# so a sublessor's calls are charged in the order they were made. Only calls
# judged valid since the high-water (minus a margin) are read, through
# idx_filter_rule (filter_rule, judged_at, start_time, id), shared with the
# judge; NULL judged_at (set by hand) is a second, normally empty, range of it.
# With no high-water this range is not read: the sweep reads every call then.
_ALLOCATE_SELECT = f"""
{ORDER_VALUES}
FROM {CALL_LOG} c FORCE INDEX (idx_filter_rule) {WITHOUT_ORDER}
WHERE c.filter_rule = 1
  AND (c.judged_at IS NULL OR c.judged_at >= %s - INTERVAL %s SECOND)
  AND c.order_allocated = 0 AND {NO_ORDER} AND {FITS_PAYMENT_LOG}
ORDER BY c.start_time, c.id
"""
# The calls of the orders this transaction inserted (ids above the highest one
# before it), from the payment log's primary key, each call by uk_call_id: never
# a scan of the call log, whatever is still unflagged in it (payments/flags.py).
MARK_ALLOCATED = f"""
UPDATE {PAYMENT_LOG} p FORCE INDEX (PRIMARY)
  JOIN {CALL_LOG} c FORCE INDEX (uk_call_id) ON c.call_id = p.call_id
SET c.order_allocated = 1
WHERE p.id > %s AND c.filter_rule = 1 AND c.order_allocated = 0
"""
_LAST_ORDER = f"SELECT IFNULL(MAX(id), 0) FROM {PAYMENT_LOG}"
# The high-water is position_time (a row without one is no high-water, like no row: the first
# allocation reads all); position_id counts the calls repairs handed back. One statement stays
# here as job_cursor cannot say it: an increment.
_ADD_HANDED_BACK = (
    f"UPDATE {JOB_CURSOR} SET position_id = IFNULL(position_id, 0) + %s WHERE name = %s"
)
_SWEPT_IDS = f"SELECT call_id FROM {PAYMENT_LOG} WHERE id > %s ORDER BY id LIMIT {SHOWN}"


@dataclass(frozen=True)
class Allocation:
    """What one allocation did: orders inserted (sweep included), of them found by the sweep
    (of those, set back to 0 by a repair command: ``released``), and valid calls that cannot
    be given one; with at most ``SHOWN`` of their ids to name."""

    allocated: int = 0
    found_by_sweep: int = 0
    unallocatable: int = 0
    found: tuple[str, ...] = ()  # call ids of the first orders the sweep inserted
    unfit: tuple[tuple[int, str], ...] = ()  # (call log id, call_id) of the first unfit calls
    released: int = 0  # of found_by_sweep, calls a repair command had set back to 0
    transactions: int = field(default=1, compare=False)  # rounds it took

    def then(self, later: Allocation) -> Allocation:
        """This round followed by ``later``: counts added, the unfit calls of the last round."""
        return Allocation(
            self.allocated + later.allocated,
            self.found_by_sweep + later.found_by_sweep,
            later.unallocatable,
            (self.found + later.found)[:SHOWN],
            later.unfit,
            self.released + later.released,
            self.transactions + later.transactions,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "allocated": self.allocated,
            "found_by_sweep": self.found_by_sweep,  # 0 in normal operation, or after a repair
            "released_by_repair": self.released,  # of found_by_sweep: set back by a repair command
            "unallocatable_calls": self.unallocatable,  # 0 in normal operation
        }


def allocate_orders(
    conn: Any,
    amount_fen: int,
    *,
    margin_seconds: int = ALLOCATION_MARGIN_SECONDS,
    lock_timeout: int = 300,
    batch: int = BATCH,
) -> Allocation:
    """Give every valid call without an order a pending one (rounds of one transaction each,
    the judge lock held in each)."""
    margin = int(margin_seconds)
    total: Allocation | None = None
    while True:
        step, more = _round(conn, amount_fen, margin, lock_timeout, max(1, int(batch)))
        total = step if total is None else total.then(step)
        if not more:
            break
    _warn(total, margin)
    return total


def _round(
    conn: Any, amount_fen: int, margin: int, lock_timeout: int, batch: int
) -> tuple[Allocation, bool]:
    """One transaction under the judge lock; True with it while the sweep came back full."""
    with judge_lock(conn, lock_timeout), transaction(conn) as cur:
        cur.execute("SELECT NOW(3)")
        started = cur.fetchone()[0]
        position = job_cursor.read(cur, ALLOCATION_CURSOR, for_update=True)
        high_water = position.position_time if position else None
        handed_back = int(position.position_id or 0) if position else 0
        cur.execute(_LAST_ORDER)
        last_order = int(cur.fetchone()[0])
        skip = flags.sweep_skip(cur)
        swept = sweep.sweep_missed(cur, amount_fen, high_water, margin, skip=skip, limit=batch)
        more = swept >= batch
        found = swept if high_water is not None else 0
        released = min(found, handed_back)
        if handed_back:  # spent by this allocation, whoever gave the calls an order
            left = handed_back - released if more else 0
            job_cursor.move_id(cur, ALLOCATION_CURSOR, left)  # the high-water stays
        found_ids: tuple[str, ...] = ()
        if found:
            cur.execute(_SWEPT_IDS, (last_order,))
            found_ids = tuple(str(r[0]) for r in cur.fetchall())
        inserted = 0
        if high_water is not None:
            inserted = int(
                cur.execute(INSERT_ORDERS + _ALLOCATE_SELECT, (amount_fen, high_water, margin))
            )
        if swept or inserted:
            cur.execute(MARK_ALLOCATED, (last_order,))
        unallocatable, unfit = (0, []) if more else sweep.unfit_calls(cur, SHOWN, skip=skip)
        if high_water is not None or not more:
            job_cursor.save_time(cur, ALLOCATION_CURSOR, started)
    allocation = Allocation(
        swept + inserted, found, unallocatable, found_ids, tuple(unfit), released
    )
    return allocation, more


def hand_back(cur: Any, calls: int) -> None:
    """Count ``calls`` a repair command sets back to ``order_allocated = 0`` in ``cur``'s
    transaction: the sweep that gives them an order tells them apart from the missed ones.

    Call it (with 0: only the lock) before touching the calls: it locks the high-water's row
    first, in the order an allocation round takes its locks, so the two cannot deadlock.
    """
    job_cursor.ensure(cur, ALLOCATION_CURSOR, None)
    job_cursor.lock(cur, ALLOCATION_CURSOR)
    if calls:
        cur.execute(_ADD_HANDED_BACK, (int(calls), ALLOCATION_CURSOR))


def _warn(result: Allocation, margin: int) -> None:
    if result.released:
        log.info(
            "%s call(s) set back to order_allocated = 0 by a repair command got their new "
            "order now (found by the sweep, as expected).",
            result.released,
        )
    missed = result.found_by_sweep - result.released
    if missed:
        log.warning(
            "%s valid call(s) judged more than %s s before the allocation high-water had no "
            "order; the sweep allocated them now (names among: %s%s). Either order_allocated "
            "was set to 0 by hand, or they are calls of the history never charged before the "
            "cutover, or the database clock went back: if neither of the first two, check the "
            "clock of the database host.",
            missed, margin, ", ".join(result.found),
            " ..." if result.found_by_sweep > len(result.found) else "",
        )  # fmt: skip
    if result.unallocatable:
        log.warning(
            "%s valid call(s) of %s cannot be given an order (%s); every other call is "
            "charged, and the charge task fails at the end of its pass while any is left. "
            "(id, call_id) of the first %s: %s",
            result.unallocatable, CALL_LOG, sweep.UNFIT_WHY, len(result.unfit), list(result.unfit),
        )  # fmt: skip


def high_water(conn: Any) -> Any:
    """The allocation high-water (DB time of the last completed allocation), None before the first."""
    with transaction(conn) as cur:
        position = job_cursor.read(cur, ALLOCATION_CURSOR)
    return position.position_time if position else None


def allocation_plan(conn: Any, *, margin_seconds: int = ALLOCATION_MARGIN_SECONDS) -> list[dict]:
    """EXPLAIN of the allocation's high-water SELECT (bench, tests; now when there is none)."""
    position = high_water(conn)
    if position is None:
        position = _now(conn)
    return explain(conn, _ALLOCATE_SELECT, (0, position, margin_seconds))


def sweep_plan(
    conn: Any, *, margin_seconds: int = ALLOCATION_MARGIN_SECONDS, batch: int = BATCH
) -> list[dict]:
    """EXPLAIN of the sweep's SELECT at the current high-water and floor (bench, tests)."""
    position = high_water(conn)
    with transaction(conn) as cur:
        skip = flags.sweep_skip(cur)
    params = sweep.sweep_params(0, position, margin_seconds, skip, batch)
    return explain(conn, sweep.SWEEP_SELECT, params)


def mark_plan(conn: Any, after: int) -> list[dict]:
    """EXPLAIN of ``MARK_ALLOCATED`` for the orders above ``after`` (tests: never a scan)."""
    return explain(conn, MARK_ALLOCATED, (after,))


def _now(conn: Any) -> Any:
    with transaction(conn) as cur:
        cur.execute("SELECT NOW(3)")
        (now,) = cur.fetchone()
    return now
