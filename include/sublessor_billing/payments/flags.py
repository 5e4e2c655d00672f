"""``order_allocated`` on the calls charged before it existed, and a daily check that it holds.

Migration 080 adds the column (default 0) and never touches a call row: an
UPDATE of the whole history would lock the call log for as long as it runs.
Here the application flags that history instead:

* ``flag_history``: ``order_allocated = 1`` on every valid call that already has
  a payment row, in chunks of ``CHUNK`` call-log ids (the primary key), one
  committed transaction per chunk that also moves ``job_cursor`` row
  ``payment_flag_history`` (``position_id`` = the last id covered). Interrupted,
  the next pass resumes after that id; once it reaches the highest id the call
  log had when it started, ``position_time`` is set and every later pass costs
  one primary-key read. Calls allocated after 080 are flagged by the allocation
  itself. Until the history is flagged the sweep's range holds it, and the
  sweep's anti-join keeps it from getting a second order (payments/sweep.py).
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sublessor_billing.payments.store import CALL_LOG, PAYMENT_LOG, explain

log = logging.getLogger(__name__)

HISTORY_CURSOR = "payment_flag_history"
CHECK_CURSOR = "payment_flag_check"
CHUNK = 10_000
CHECK_EVERY_HOURS = 24

_ENSURE = "INSERT IGNORE INTO job_cursor (name, position_id) VALUES (%s, 0)"
_STATE = "SELECT position_id, position_time FROM job_cursor WHERE name = %s"
_LOCK = "SELECT position_id, position_time FROM job_cursor WHERE name = %s FOR UPDATE"
_ADVANCE = (
    "UPDATE job_cursor SET position_id = %s, position_time = IF(%s, NOW(), NULL) WHERE name = %s"
)
# One chunk: a range of the call log's primary key, each call's order by uk_call_id.
FLAG_CHUNK = f"""
UPDATE {CALL_LOG} c FORCE INDEX (PRIMARY)
  JOIN {PAYMENT_LOG} p FORCE INDEX (uk_call_id) ON p.call_id = c.call_id
SET c.order_allocated = 1
WHERE c.id > %s AND c.id <= %s AND c.filter_rule = 1 AND c.order_allocated = 0
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
    " FROM job_cursor WHERE name = %s"
)
_CHECKED = (
    "INSERT INTO job_cursor (name, position_id, position_time) VALUES (%s, %s, NOW())"
    " ON DUPLICATE KEY UPDATE position_id = VALUES(position_id), position_time = NOW()"
)


def _no_chunk(covered: int) -> None:
    """Default ``on_chunk``: tests inject one that stops the job after a chunk."""


@dataclass(frozen=True)
class HistoryFlags:
    flagged: int  # calls this run set to 1
    chunks: int  # chunks this run committed
    done: bool  # the whole history is flagged (now or earlier)


def history_flagged(conn: Any) -> bool:
    """Whether ``flag_history`` has covered the whole history."""
    with conn.cursor() as cur:
        cur.execute(_STATE, (HISTORY_CURSOR,))
        row = cur.fetchone()
    conn.commit()
    return bool(row and row[1] is not None)


def flag_history(
    conn: Any, *, chunk: int = CHUNK, on_chunk: Callable[[int], None] = _no_chunk
) -> HistoryFlags:
    """Flag the valid calls that have an order, chunk by chunk from where the last run stopped."""
    if history_flagged(conn):
        return HistoryFlags(0, 0, True)
    with conn.cursor() as cur:
        cur.execute(_ENSURE, (HISTORY_CURSOR,))
        cur.execute(f"SELECT IFNULL(MAX(id), 0) FROM {CALL_LOG}")
        end = int(cur.fetchone()[0])
    conn.commit()
    flagged = chunks = 0
    while True:
        try:
            with conn.cursor() as cur:
                cur.execute(_LOCK, (HISTORY_CURSOR,))  # two runs at once take turns per chunk
                position, finished = cur.fetchone()
                position = int(position or 0)
                if finished is not None:
                    conn.commit()
                    break
                upto = max(position, min(position + chunk, end))
                if upto > position:
                    flagged += cur.execute(FLAG_CHUNK, (position, upto))
                cur.execute(_ADVANCE, (upto, upto >= end, HISTORY_CURSOR))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        if upto > position:
            chunks += 1
            on_chunk(upto)
        if upto >= end:
            break
    if chunks:
        log.info(
            "Flagged %s call(s) charged before migration 080 (order_allocated = 1), in %s "
            "chunk(s) of %s ids, up to call log id %s: the history is flagged.",
            flagged, chunks, chunk, end,
        )  # fmt: skip
    return HistoryFlags(flagged, chunks, True)


def daily_check(conn: Any, *, every_hours: int = CHECK_EVERY_HOURS) -> int | None:
    """Flag valid calls with a payment row still at 0; return how many (None: not due, or the
    history is not flagged yet). More than 0 is logged as a warning."""
    if not history_flagged(conn):
        return None
    try:
        with conn.cursor() as cur:
            cur.execute(_CHECK_DUE, (int(every_hours), CHECK_CURSOR))
            row = cur.fetchone()
            if row is not None and not row[0]:
                conn.commit()
                return None
            found = int(cur.execute(FLAG_MISSED))
            cur.execute(_CHECKED, (CHECK_CURSOR, found))
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
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


def chunk_plan(conn: Any) -> list[dict]:
    """EXPLAIN of one history chunk (tests: a range of the primary key, never a scan)."""
    return explain(conn, FLAG_CHUNK, (0, CHUNK))


def check_plan(conn: Any) -> list[dict]:
    """EXPLAIN of the daily check (tests: the (1, 0) range of idx_unallocated)."""
    return explain(conn, FLAG_MISSED, ())
