"""Calls the judge cannot judge: held aside, never judged nor charged, until an operator acts.

A held call keeps ``filter_rule = 0`` and gets ``held_reason`` (why) and
``judged_at`` (when it was held). That takes it out of the judge's candidates
(``filter_rule = 0 AND judged_at IS NULL``) and out of the hand-reset range
(which skips held calls); allocation only ever charges ``filter_rule = 1``.
Held calls are listed by ``python -m sublessor_billing.calls.quarantine held``;
``release`` clears the hold after the row was fixed, and the next judge pass
judges it like any other call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.calls.message import EARLIEST_START_TIME, MAX_START_AHEAD
from sublessor_billing.calls.rules import shift
from sublessor_billing.calls.store import CALL_LOG, as_text
from sublessor_billing.phone import mask_phone

# Intake refuses a start_time more than MAX_START_AHEAD after the intake time
# (Asia/Shanghai); received_at is the database server's clock. One day more
# here, so that a server in another time zone never holds a call intake accepted.
JUDGE_START_SLACK = MAX_START_AHEAD + timedelta(days=1)
_HELD = "filter_rule = 0 AND judged_at IS NOT NULL AND held_reason IS NOT NULL"
_HOLD = (
    f"UPDATE {CALL_LOG} SET held_reason = %s, judged_at = NOW(3) "
    "WHERE filter_rule = 0 AND judged_at IS NULL AND id = %s"
)
_DESCRIBE = (
    "SELECT id, call_id, sublessor_id, caller, start_time, judged_at, held_reason "
    f"FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {_HELD}"
)
_RELEASE = f"UPDATE {CALL_LOG} SET held_reason = NULL, judged_at = NULL WHERE id = %s AND {_HELD}"


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


def held_calls(cur: Any, *, ids: Sequence[int] | None = None, limit: int = 100) -> list[dict]:
    """The held calls (all, or these call log ids), caller masked, oldest first."""
    sql, params = _DESCRIBE, []
    if ids is not None:
        if not ids:
            return []
        sql += f" AND id IN ({', '.join(['%s'] * len(ids))})"
        params = list(ids)
    cur.execute(sql + " ORDER BY id LIMIT %s", [*params, limit])
    keys = ("id", "call_id", "sublessor_id", "caller", "start_time", "held_at", "reason")
    rows = [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["caller"] = mask_phone(row["caller"])
        row["call_id"] = as_text(row["call_id"])
    return rows


def count_held(cur: Any) -> int:
    cur.execute(f"SELECT COUNT(*) FROM {CALL_LOG} FORCE INDEX (idx_filter_rule) WHERE {_HELD}")
    return int(cur.fetchone()[0])


def release(cur: Any, log_id: int) -> bool:
    """Clear the hold of one call (after its row was fixed): the next judge pass judges it."""
    cur.execute(_RELEASE, (log_id,))
    return cur.rowcount == 1
