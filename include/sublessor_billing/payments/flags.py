"""``order_allocated`` on the calls charged before it existed, and a daily check that it holds.

Migration 080 adds the column (default 0) and never touches a call row: an
UPDATE of the whole history would lock the call log for as long as it runs.
Here the application flags that history instead, a few seconds per pass:

* ``flag_history``: ``order_allocated = 1`` on every valid call that already has
  a payment row. Its first run records the highest call id (``job_cursor`` row
  ``payment_flag_history_end``): the history. Each chunk is the next ``CHUNK``
  calls still at (filter_rule 1, order_allocated 0) of ``idx_unallocated`` above
  the position (``ORDER BY id LIMIT``), so a database already flagged (by the
  first 080, which flagged in the migration) is done in one short read, and no
  id gap costs a round. One committed transaction per chunk also moves row
  ``payment_flag_history`` (``position_id`` = the last id covered; the row is
  locked per chunk, so two passes take turns); ``position_time`` is set once the
  range up to the end is exhausted, and every later pass reads one row. A pass
  spends at most ``BUDGET_S`` on it, then allocates and charges as usual.
* ``sweep_skip``: while the history is being flagged, the sweep and the
  unallocatable count skip the calls flagging has not reached yet (ids above
  its position up to its end): there the (1, 0) range still holds every call
  charged before 080. Below the position, flagging has moved every call with a
  payment row to 1, so what is left at (1, 0) is the calls without an order: the
  sweep reads them. The calls judged since the high-water are allocated whatever
  their id. So a call of the history that truly has no order (an old clock step,
  a call the legacy system never charged) is allocated by the first allocation
  after flagging passed it, not only once the whole history is flagged.
* ``daily_check`` (``job_cursor`` row ``payment_flag_check``, at most once per
  ``CHECK_EVERY_HOURS``): flags any valid call that has a payment row but is
  still at 0 (a row written by hand or by the legacy system), and reports how
  many: 0 in normal operation. It reads the small (1, 0) range of
  ``idx_unallocated``, so it only runs once the history is flagged.

Neither holds the judge's lock: each chunk is short, and setting 0 -> 1 on a
call that has its order agrees with what the allocation does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import CALL_LOG, JOB_CURSOR, PAYMENT_LOG
from sublessor_billing.db.transaction import retry_on_lock_conflict, transaction
from sublessor_billing.payments.store import explain

log = logging.getLogger(__name__)

HISTORY_CURSOR = "payment_flag_history"
HISTORY_END_CURSOR = "payment_flag_history_end"
CHECK_CURSOR = "payment_flag_check"
CHUNK = 10_000
BUDGET_S = 5.0  # flagging per pass, at most (checked before each chunk)
CHECK_EVERY_HOURS = 24

# Local, not job_cursor's: these take a position from the call log or a time from the
# database's NOW() in the statement itself.
_BEGIN_END = f"INSERT IGNORE INTO {JOB_CURSOR} (name, position_id) SELECT %s, IFNULL(MAX(id), 0) FROM {CALL_LOG}"
_ADVANCE = (
    f"UPDATE {JOB_CURSOR} SET position_id = %s, position_time = IF(%s, NOW(), NULL) WHERE name = %s"
)
# The next chunk: the first CHUNK calls of the (1, 0) range of idx_unallocated
# (filter_rule, order_allocated, id) above the position, up to the end.
_UNFLAGGED = f"""
FROM {CALL_LOG} c FORCE INDEX (idx_unallocated)
WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND c.id > %s AND c.id <= %s"""
CHUNK_RANGE = (
    f"SELECT COUNT(*), MAX(id) FROM (SELECT c.id{_UNFLAGGED} ORDER BY c.id LIMIT %s) chunk"
)
# One chunk: that range of idx_unallocated, each call's order by uk_call_id.
FLAG_CHUNK = f"""
UPDATE {CALL_LOG} c FORCE INDEX (idx_unallocated)
  JOIN {PAYMENT_LOG} p FORCE INDEX (uk_call_id) ON p.call_id = c.call_id
SET c.order_allocated = 1
WHERE c.filter_rule = 1 AND c.order_allocated = 0 AND c.id > %s AND c.id <= %s
"""
# The daily check: the (1, 0) range of idx_unallocated, each call's order by uk_call_id.
FLAG_MISSED = f"""
UPDATE {CALL_LOG} c FORCE INDEX (idx_unallocated)
  JOIN {PAYMENT_LOG} p FORCE INDEX (uk_call_id) ON p.call_id = c.call_id
SET c.order_allocated = 1
WHERE c.filter_rule = 1 AND c.order_allocated = 0
"""
_CHECK_DUE = (
    "SELECT position_time IS NULL OR position_time < NOW() - INTERVAL %s HOUR"
    f" FROM {JOB_CURSOR} WHERE name = %s"
)
_CHECKED = (
    f"INSERT INTO {JOB_CURSOR} (name, position_id, position_time) VALUES (%s, %s, NOW())"
    " ON DUPLICATE KEY UPDATE position_id = VALUES(position_id), position_time = NOW()"
)


def _no_chunk(covered: int) -> None:
    """Default ``on_chunk``: tests inject one that stops the job after a chunk."""


@dataclass(frozen=True)
class HistoryFlags:
    flagged: int  # calls this run set to 1
    chunks: int  # chunks this run committed
    done: bool  # the whole history is flagged (now or earlier)


def _state(cur: Any, *, latest: bool = False) -> tuple[int | None, bool, int]:
    """(end of the history or None before the first run, whether it is all flagged, the last
    call id flagging covered). ``latest``: shared-lock reads, which see rows committed after
    this transaction's snapshot (another pass's first run)."""
    flagging = job_cursor.read(cur, HISTORY_CURSOR, for_share=latest)
    history = job_cursor.read(cur, HISTORY_END_CURSOR, for_share=latest)
    done = flagging is not None and flagging.position_time is not None
    end = history.position_id if history else None
    position = flagging.position_id if flagging else None
    return (None if end is None else int(end)), done, int(position or 0)


def history_flagged(conn: Any) -> bool:
    """Whether ``flag_history`` has covered the whole history."""
    with transaction(conn) as cur:
        _, done, _ = _state(cur)
    return done


def sweep_skip(cur: Any) -> tuple[int, int]:
    """``(after, upto)``: the sweep skips the call ids in ``(after, upto]``, the part of the
    history flagging has not reached yet (its position, its end) while it is being flagged.

    ``(0, 0)`` once it is flagged, and before the first ``flag_history`` (no end
    recorded): then nothing limits the sweep.
    """
    skip = recorded_skip(cur)
    return (0, 0) if skip is None else skip


def recorded_skip(cur: Any) -> tuple[int, int] | None:
    """``sweep_skip``, but None before the first ``flag_history``: where the history ends is not
    known yet (call400_billing's sensor then cannot tell the history from new calls cheaply)."""
    end, done, position = _state(cur)
    if done:
        return (0, 0)
    return None if end is None else (min(position, end), end)


def _begin(conn: Any) -> tuple[int, bool]:
    """(end of the history, whether it is all flagged); the first run records the end.

    Two first runs at once: the second's INSERT IGNORE waits for the first's row and
    then does nothing; its re-read takes a shared lock, so it sees the row the first
    committed (a plain read returns this transaction's snapshot, taken before; an
    exclusive one deadlocks two passes that both waited on a third).
    """
    with transaction(conn) as cur:
        end, done, _ = _state(cur)
        if not done and end is None:  # the first run: where the history ends
            cur.execute(_BEGIN_END, (HISTORY_END_CURSOR,))
            job_cursor.ensure(cur, HISTORY_CURSOR, 0)
            end, done, _ = _state(cur, latest=True)
    if end is None and not done:
        raise RuntimeError(
            f"job_cursor row {HISTORY_END_CURSOR!r} is missing right after it was recorded "
            "(deleted meanwhile?); rerun the task"
        )
    return (0 if end is None else end), done


def flag_history(
    conn: Any,
    *,
    budget_s: float | None = None,
    chunk: int = CHUNK,
    on_chunk: Callable[[int], None] = _no_chunk,
) -> HistoryFlags:
    """Flag the valid calls that have an order, chunk by chunk from where the last run stopped,
    for at most ``budget_s`` (default ``BUDGET_S``; 0: only record where the history ends)."""
    budget = BUDGET_S if budget_s is None else budget_s
    started = time.monotonic()
    end, done = retry_on_lock_conflict(
        lambda: _begin(conn), attempts=3, what="Recording where the call history ends"
    )
    if done:
        return HistoryFlags(0, 0, True)
    flagged = chunks = 0
    while not done and time.monotonic() - started < budget:
        with transaction(conn) as cur:
            # two runs at once take turns per chunk
            position, finished = job_cursor.lock(cur, HISTORY_CURSOR)
            position = int(position or 0)
            if finished is not None:
                done = True
                break
            cur.execute(CHUNK_RANGE, (position, end, chunk))
            found, last = cur.fetchone()
            done = int(found) < chunk  # the range up to the end is exhausted
            upto = end if done else int(last)
            if found:
                flagged += cur.execute(FLAG_CHUNK, (position, upto))
            cur.execute(_ADVANCE, (upto, done, HISTORY_CURSOR))
        if found:
            chunks += 1
            on_chunk(upto)
    if chunks or done:
        log.info(
            "Flagged %s call(s) charged before migration 080 (order_allocated = 1) in %s chunk(s) "
            "of at most %s calls, history up to call log id %s: %s.",
            flagged, chunks, chunk, end,
            "the history is flagged" if done else "the next pass goes on",
        )  # fmt: skip
    return HistoryFlags(flagged, chunks, done)


def daily_check(conn: Any, *, every_hours: int = CHECK_EVERY_HOURS) -> int | None:
    """Flag valid calls with a payment row still at 0; return how many (None: not due, or the
    history is not flagged yet). More than 0 is logged as a warning."""
    if not history_flagged(conn):
        return None
    with transaction(conn) as cur:
        cur.execute(_CHECK_DUE, (int(every_hours), CHECK_CURSOR))
        row = cur.fetchone()
        if row is not None and not row[0]:
            return None
        found = int(cur.execute(FLAG_MISSED))
        cur.execute(_CHECKED, (CHECK_CURSOR, found))
    if found:
        log.warning(
            "Daily check: %s valid call(s) had a payment row but order_allocated = 0 (a row "
            "written by hand or by another system?); flagged now. They were never charged "
            "twice: an order is one per call_id. See docs/payments.md, 'Flagging the history'.",
            found,
        )
    else:
        log.info("Daily check: every valid call with a payment row is flagged.")
    return found


def chunk_plans(conn: Any) -> list[list[dict]]:
    """EXPLAIN of one history chunk, its range then its UPDATE (tests: never a scan)."""
    return [
        explain(conn, CHUNK_RANGE, (0, 2**62, CHUNK)),
        explain(conn, FLAG_CHUNK, (0, CHUNK)),
    ]


def check_plan(conn: Any) -> list[dict]:
    """EXPLAIN of the daily check (tests: the (1, 0) range of idx_unallocated)."""
    return explain(conn, FLAG_MISSED, ())
