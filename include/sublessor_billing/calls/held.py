"""Calls the judge cannot judge: held aside, never judged nor charged, until judged or released.

A held call keeps ``filter_rule = 0`` and gets ``held_reason`` (why),
``judged_at`` (when it was last held) and ``held_count`` (how many times the
judge held it). That takes it out of the judge's candidates (``filter_rule = 0
AND judged_at IS NULL``) and out of the hand-reset range (which skips held
calls); allocation only ever charges ``filter_rule = 1``.

Two kinds of hold:
- a start_time intake would refuse (``implausible_start``): the row must be
  fixed by hand; it stays held until released;
- the judge failed on the call (``FAILED``): a fault of ours, perhaps fixed by
  the next deployment, so the call is retried automatically (calls.singly) up to
  ``HOLD_RETRIES`` times, ``RETRY_FIRST_DELAY_MIN`` minutes after the first hold
  and then twice as long each time (about 21 hours in all), then stays held.
Held calls are listed by ``python -m sublessor_billing.calls.quarantine held``;
``release`` clears holds (one call, a reason prefix, or all): the next judge
pass judges them like any other call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.calls.message import EARLIEST_START_TIME, MAX_START_AHEAD
from sublessor_billing.calls.rules import FilterRule, shift
from sublessor_billing.calls.store import call_id_for_display
from sublessor_billing.db.sql import marks
from sublessor_billing.db.tables import CALL_LOG
from sublessor_billing.phone import mask_phone

# Intake refuses a start_time more than MAX_START_AHEAD after the intake time
# (Asia/Shanghai); received_at is the database server's clock. One day more
# here, so that a server in another time zone never holds a call intake accepted.
JUDGE_START_SLACK = MAX_START_AHEAD + timedelta(days=1)
FAILED = "the judge failed on this call: "
HOLD_RETRIES = 8
RETRY_FIRST_DELAY_MIN = 5
_UNJUDGED = f"filter_rule = {FilterRule.UNJUDGED:d}"
_HELD = f"{_UNJUDGED} AND judged_at IS NOT NULL AND held_reason IS NOT NULL"
_HOLD = (
    f"UPDATE {CALL_LOG} SET held_reason = %s, judged_at = NOW(3), held_count = held_count + 1 "
    f"WHERE {_UNJUDGED} AND judged_at IS NULL AND id = %s"
)
_HOLD_AGAIN = (
    f"UPDATE {CALL_LOG} SET held_reason = %s, judged_at = NOW(3), held_count = held_count + 1 "
    f"WHERE id = %s AND {_HELD}"
)
_UNHOLD = f"UPDATE {CALL_LOG} SET held_reason = NULL, judged_at = NULL WHERE id = %s AND {_HELD}"
# A held call the judge failed on whose next retry is due (parameters: ``due_params()``);
# the judge retries them, call400_billing's sensor counts them as work (leftovers.py).
DUE = (
    f"{_HELD} AND held_reason LIKE %s AND held_count <= %s "
    "AND judged_at <= NOW(3) - INTERVAL (%s << (CAST(held_count AS SIGNED) - 1)) MINUTE"
)
_DUE = f"FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {DUE} ORDER BY start_time, id LIMIT %s"
_DESCRIBE = (
    "SELECT id, call_id, sublessor_id, caller, start_time, judged_at, held_count, held_reason "
    f"FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {_HELD}"
)
_RELEASE = (
    f"UPDATE {CALL_LOG} SET held_reason = NULL, judged_at = NULL, held_count = 0 WHERE {_HELD}"
)


def implausible_start(
    start_time: datetime | None, received_at: datetime | None, now: datetime
) -> str | None:
    """Why a logged call's start_time cannot be judged (intake would refuse it), or None."""
    if start_time is None:
        return "start_time is not a readable date (a zero or out-of-range DATETIME)"
    if start_time < EARLIEST_START_TIME:
        return f"start_time {start_time} is before {EARLIEST_START_TIME:%Y-%m-%d}"
    logged = now if received_at is None or received_at > now else received_at
    if start_time > shift(logged, JUDGE_START_SLACK):
        return (
            f"start_time {start_time} is more than {JUDGE_START_SLACK.days} days after "
            f"the call was logged ({logged:%Y-%m-%d %H:%M:%S})"
        )
    return None


def hold(cur: Any, reasons: Mapping[int, str]) -> int:
    """Hold the calls (call log id -> reason) that are still unjudged; return how many."""
    held = 0
    for log_id, reason in sorted(reasons.items()):
        cur.execute(_HOLD, (reason[:255], log_id))
        held += cur.rowcount
    return held


def hold_again(cur: Any, log_id: int, reason: str) -> None:
    """A retry failed (or found the row implausible): the call stays held, one hold more."""
    cur.execute(_HOLD_AGAIN, (reason[:255], log_id))


def unhold(cur: Any, log_id: int) -> None:
    """Make a held call a candidate again (for a retry within a savepoint); held_count stays."""
    cur.execute(_UNHOLD, (log_id,))


def due_retries(cur: Any, columns: str, limit: int) -> list[tuple]:
    """Calls the judge failed on whose next retry is due (oldest start first), read as ``columns``."""
    cur.execute(f"SELECT {columns} {_DUE}", (*due_params(), limit))
    return list(cur.fetchall())


def due_params() -> tuple[str, int, int]:
    """The parameters of ``DUE``, in order."""
    return (_like_prefix(FAILED), HOLD_RETRIES, RETRY_FIRST_DELAY_MIN)


def held_calls(cur: Any, *, ids: Sequence[int] | None = None, limit: int = 100) -> list[dict]:
    """The held calls (all, or these call log ids), caller masked, oldest first (for display)."""
    sql, params = _DESCRIBE, []
    if ids is not None:
        if not ids:
            return []
        sql += f" AND id IN ({marks(ids)})"
        params = list(ids)
    cur.execute(sql + " ORDER BY id LIMIT %s", [*params, limit])
    keys = (
        "id",
        "call_id",
        "sublessor_id",
        "caller",
        "start_time",
        "held_at",
        "held_count",
        "reason",
    )
    rows = [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["caller"] = mask_phone(row["caller"])
        row["call_id"] = call_id_for_display(row["call_id"])
    return rows


def count_held(cur: Any, *, reason_prefix: str | None = None, received: tuple | None = None) -> int:
    """How many calls are held (with this reason prefix; received in this window)."""
    sql, params = f"SELECT COUNT(*) FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {_HELD}", []
    if reason_prefix is not None:
        sql, params = sql + " AND held_reason LIKE %s", [_like_prefix(reason_prefix)]
    if received is not None:
        sql, params = sql + " AND received_at >= %s AND received_at < %s", [*params, *received]
    cur.execute(sql, params)
    return int(cur.fetchone()[0])


def release(cur: Any, log_id: int) -> bool:
    """Clear the hold of one call (after its row was fixed): the next judge pass judges it."""
    cur.execute(_RELEASE + " AND id = %s", (log_id,))
    return cur.rowcount == 1


def release_all(cur: Any, *, reason_prefix: str | None = None) -> int:
    """Clear the holds of every held call (whose reason starts with ``reason_prefix``)."""
    if reason_prefix is None:
        cur.execute(_RELEASE)
    else:
        cur.execute(_RELEASE + " AND held_reason LIKE %s", (_like_prefix(reason_prefix),))
    return int(cur.rowcount)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
