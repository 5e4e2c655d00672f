"""Valid calls flagged as having an order whose payment row is gone: found and named, never reset.

``order_allocated = 1`` is set in the transaction that writes the call's payment
row (for the history, only where one exists), and no code of ours deletes a
payment row. A person may, and no allocation reads a call at 1, so such a call
is silently never charged again. But the deleted row may have been sent and
charged (a ``success`` row deleted by mistake): giving the call a new order id
would charge it twice. So nothing here changes a call. The charge step fails at
the end of the pass that found any (``OrphanedCalls``), naming them; a person
asks the payment center about the deleted order, then either restores the row
or runs ``python -m sublessor_billing.payments.repair orphans --yes``, which
sets them back to 0 (docs/payments.md, "A call flagged without its order").

``check_orphans`` (every charge pass) walks the valid calls at 1 received in the
last ``WINDOW_HOURS``, in id order from a cursor (``job_cursor`` row
``payment_orphan_check``: ``position_id`` the last call id read, ``position_time``
NULL while a round of the window is under way, else when the last round ended),
``CHUNK`` calls of the (1, 1) range of ``idx_unallocated`` per transaction, each
call's order by ``uk_call_id``: one chunk per pass, more while ``BUDGET_S`` lasts. A new round
starts ``EVERY_HOURS`` after the last one ended, at the first call received in
the window (``idx_received``). Plain reads: nothing is locked but the cursor row,
so two passes take turns per chunk. ``scan`` is the same walk without a cursor,
for the repair command (``--days N``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import CALL_LOG, JOB_CURSOR
from sublessor_billing.db.transaction import transaction
from sublessor_billing.payments.store import NO_ORDER, WITHOUT_ORDER, explain

log = logging.getLogger(__name__)

CURSOR = "payment_orphan_check"
WINDOW_HOURS = 48
EVERY_HOURS = 1
CHUNK = 10_000  # calls at (1, 1) read per transaction
BUDGET_S = 2.0  # per pass (checked after each chunk: one at least)
SHOWN = 20
COMMAND = "python -m sublessor_billing.payments.repair orphans --yes"

# The first call received in the window: one dive into idx_received.
WINDOW_START = f"""
SELECT c.id FROM {CALL_LOG} c FORCE INDEX (idx_received)
WHERE c.received_at >= NOW(3) - INTERVAL %s HOUR ORDER BY c.received_at LIMIT 1"""
# The next chunk: the first CHUNK calls of the (1, 1) range of idx_unallocated
# (filter_rule, order_allocated, id) above the position, read in index order.
CHUNK_RANGE = f"""
SELECT COUNT(*), MAX(id) FROM (
  SELECT c.id FROM {CALL_LOG} c FORCE INDEX (idx_unallocated)
  WHERE c.filter_rule = 1 AND c.order_allocated = 1 AND c.id > %s ORDER BY c.id LIMIT %s
) chunk"""
# Its calls without a payment row: the same range, each call's order by uk_call_id.
ORPHANS = f"""
SELECT c.id, c.call_id FROM {CALL_LOG} c FORCE INDEX (idx_unallocated) {WITHOUT_ORDER}
WHERE c.filter_rule = 1 AND c.order_allocated = 1 AND c.id > %s AND c.id <= %s AND {NO_ORDER}
ORDER BY c.id"""
# The cursor's row: a round runs while position_time is NULL; the next is due EVERY_HOURS
# after the last ended. Local, not job_cursor's: both compare or set the database's NOW().
_LOCK = (
    "SELECT position_id, position_time IS NULL, position_time < NOW() - INTERVAL %s HOUR"
    f" FROM {JOB_CURSOR} WHERE name = %s FOR UPDATE"
)
_ADVANCE = (
    f"UPDATE {JOB_CURSOR} SET position_id = %s, position_time = IF(%s, NOW(), NULL) WHERE name = %s"
)


@dataclass(frozen=True)
class Orphans:
    found: int  # calls at 1 without a payment row, in what was read
    call_ids: tuple[str, ...] = ()  # the first SHOWN of them
    read: int = 0  # calls at (1, 1) read
    done: bool = True  # the round of the window ended


class OrphanedCalls(RuntimeError):
    """Valid calls flagged as having an order whose payment row is gone; nothing was changed."""

    def __init__(self, orphans: Orphans) -> None:
        more = orphans.found - len(orphans.call_ids)
        super().__init__(
            f"{orphans.found} valid call(s) of {CALL_LOG} have order_allocated = 1 but no payment "
            f"row (deleted by hand?), so no pass charges them: {', '.join(orphans.call_ids)}"
            f"{f'; and {more} more' if more > 0 else ''}. Nothing was changed: the deleted row "
            "may have been sent and charged. For each, find the order id of its deleted row (a "
            "backup, the binlog) and ask the payment center (/trade/query, "
            "PaymentApiHook().query(order_id=...)): charged -> restore the payment row as it was; "
            f"never charged (not_found) -> {COMMAND} sets order_allocated = 0 on them and the "
            "next pass gives them new order ids (docs/payments.md, 'A call flagged without its "
            "order')."
        )
        self.orphans = orphans


def window_start(cur: Any, hours: int) -> int | None:
    """The id of the first call received in the last ``hours`` (None: no such call)."""
    cur.execute(WINDOW_START, (int(hours),))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def read_chunk(cur: Any, position: int, chunk: int) -> tuple[int, int, bool, list[tuple[int, str]]]:
    """(last id read, calls read, whether the range above ``position`` is exhausted, orphans)."""
    cur.execute(CHUNK_RANGE, (position, chunk))
    read, last = cur.fetchone()
    read = int(read)
    if not read:
        return position, 0, True, []
    cur.execute(ORPHANS, (position, int(last)))
    return int(last), read, read < chunk, [(int(r[0]), str(r[1])) for r in cur.fetchall()]


def scan(conn: Any, *, days: int, chunk: int = CHUNK) -> Iterator[list[tuple[int, str]]]:
    """``(id, call_id)`` of the orphans among the calls received in the last ``days``, a chunk
    at a time, each read in its own committed transaction (no cursor, no budget: the command)."""
    with transaction(conn) as cur:
        start = window_start(cur, max(1, int(days)) * 24)
    if start is None:
        return
    position, done = start - 1, False
    while not done:
        with transaction(conn) as cur:
            position, _, done, found = read_chunk(cur, position, chunk)
        if found:
            yield found


def check_orphans(
    conn: Any,
    *,
    window_hours: int = WINDOW_HOURS,
    every_hours: int = EVERY_HOURS,
    budget_s: float | None = None,
    chunk: int | None = None,
) -> Orphans | None:
    """Read the next chunks of the window for calls at 1 without a payment row: one, then more
    while ``budget_s`` (default ``BUDGET_S``) lasts; change nothing. None: not due."""
    budget = BUDGET_S if budget_s is None else budget_s
    size = CHUNK if chunk is None else max(1, int(chunk))
    started = time.monotonic()
    with transaction(conn) as cur:
        job_cursor.ensure(cur, CURSOR, 0, "2000-01-01")  # long ago: the first round is due
    found, shown, read, chunks, done, ran = 0, [], 0, 0, False, False
    while not done and (not chunks or time.monotonic() - started < budget):
        with transaction(conn) as cur:
            cur.execute(_LOCK, (int(every_hours), CURSOR))
            position, running, due = cur.fetchone()
            if not running and not due:
                break
            ran, position = True, int(position or 0)
            if not running:  # a new round, from the first call received in the window
                start = window_start(cur, window_hours)
                if start is None:  # nothing received in the window: the round is over
                    cur.execute(_ADVANCE, (position, True, CURSOR))
                    break
                position = start - 1
            position, n, done, orphans = read_chunk(cur, position, size)
            cur.execute(_ADVANCE, (position, done, CURSOR))
        chunks, read, found = chunks + 1, read + n, found + len(orphans)
        shown.extend(call_id for _, call_id in orphans[: SHOWN - len(shown)])
    if not ran:
        return None
    if found:
        log.warning(
            "%s valid call(s) have order_allocated = 1 but no payment row (deleted by hand?); "
            "nothing was changed, the charge step fails at the end of this pass: %s%s. See "
            "docs/payments.md, 'A call flagged without its order'.",
            found, ", ".join(shown), " ..." if found > len(shown) else "",
        )  # fmt: skip
    return Orphans(found, tuple(shown), read, done)


def orphans_plans(conn: Any) -> list[list[dict]]:
    """EXPLAIN of the window's start, one chunk's range and its orphans (tests: index ranges
    in index order, no sort, never a scan)."""
    return [
        explain(conn, WINDOW_START, (WINDOW_HOURS,)),
        explain(conn, CHUNK_RANGE, (0, CHUNK)),
        explain(conn, ORPHANS, (0, 2**62)),
    ]
