"""``job_cursor``: one row per named position a job keeps between runs.

A row is ``(name, position_id, position_time)``; what the two positions mean is
the owning job's (the accounting cursor's last payment id, broker sync's
source time, the history flagging's last call id, ...). A job reads and moves
its row in the same transaction as the work the row covers, so a rolled-back
run leaves its position where it was. These are the only statements on the
table; each takes the caller's cursor and never commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sublessor_billing.db.tables import JOB_CURSOR

_ENSURE = f"INSERT IGNORE INTO {JOB_CURSOR} (name, position_id, position_time) VALUES (%s, %s, %s)"
_READ = f"SELECT position_id, position_time FROM {JOB_CURSOR} WHERE name = %s"
_SET = f"UPDATE {JOB_CURSOR} SET position_id = %s, position_time = %s WHERE name = %s"
_SET_ID = f"UPDATE {JOB_CURSOR} SET position_id = %s WHERE name = %s"
_UPSERT_TIME = (
    f"INSERT INTO {JOB_CURSOR} (name, position_time) VALUES (%s, %s)"
    " ON DUPLICATE KEY UPDATE position_time = VALUES(position_time)"
)
_UPSERT = (
    f"INSERT INTO {JOB_CURSOR} (name, position_id, position_time) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE position_id = VALUES(position_id),"
    " position_time = VALUES(position_time)"
)


class Position(NamedTuple):
    position_id: int | None
    position_time: datetime | None


def ensure(cur: Any, name: str, position_id: int | None = 0, position_time: Any = None) -> None:
    """Create the row with these positions unless it exists (an existing row is left as it is)."""
    cur.execute(_ENSURE, (name, position_id, position_time))


def read(
    cur: Any, name: str, *, for_update: bool = False, for_share: bool = False
) -> Position | None:
    """The row's positions, or None when there is no row; ``for_update`` locks it,
    ``for_share`` takes a shared lock (a locking read sees the latest committed row, not
    the transaction's snapshot)."""
    lock = " FOR UPDATE" if for_update else " LOCK IN SHARE MODE" if for_share else ""
    cur.execute(_READ + lock, (name,))
    row = cur.fetchone()
    return Position(row[0], row[1]) if row else None


def lock(cur: Any, name: str) -> Position:
    """Lock the row (two runs serialize here) and return it; a missing row is an error."""
    position = read(cur, name, for_update=True)
    if position is None:
        raise RuntimeError(
            f"{JOB_CURSOR} row {name!r} is missing (deleted while the job ran?); rerun the task"
        )
    return position


def move(cur: Any, name: str, position_id: int | None, position_time: Any = None) -> None:
    """Set both positions of an existing row."""
    cur.execute(_SET, (position_id, position_time, name))


def move_id(cur: Any, name: str, position_id: int | None) -> None:
    """Set ``position_id`` of an existing row; its ``position_time`` is left as it is."""
    cur.execute(_SET_ID, (position_id, name))


def save_time(cur: Any, name: str, position_time: Any) -> None:
    """Set ``position_time``, creating the row when there is none; ``position_id`` is left as it is."""
    cur.execute(_UPSERT_TIME, (name, position_time))


def save(cur: Any, name: str, position_id: int | None, position_time: Any = None) -> None:
    """Set both positions, creating the row when there is none."""
    cur.execute(_UPSERT, (name, position_id, position_time))
