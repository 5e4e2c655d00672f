"""The removal guard's day: numbers removed since midnight (Asia/Shanghai), in job_cursor.

Two rows, read and written in the sync's own transaction (so a refused or
failed run changes neither):

- ``broker_phone_sync_day``: ``position_time`` the day's midnight (naive local
  time), ``position_id`` the numbers the day's runs removed under the share;
- ``broker_phone_sync_day_base``: the same day, ``position_id`` the distinct
  numbers broker_phone had at the start of the day, counted by the day's first
  run before it writes (no one else writes broker_phone). While that count is 0
  (an empty table: the first sync) every run takes it again. A run under an
  allowance restarts the day from the table it leaves (base recounted, count 0).

A day only moves forward: a run whose clock reads an earlier day than the rows
(a clock stepped back over midnight) counts in the rows' day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

DAY_CURSOR = "broker_phone_sync_day"
BASE_CURSOR = "broker_phone_sync_day_base"

_ENSURE = "INSERT IGNORE INTO job_cursor (name, position_id, position_time) VALUES (%s, 0, %s)"
_LOCK = "SELECT name, position_id, position_time FROM job_cursor WHERE name IN (%s, %s) FOR UPDATE"
_SET = "UPDATE job_cursor SET position_id = %s, position_time = %s WHERE name = %s"


@dataclass(frozen=True)
class DayWindow:
    """The day a run counts in: its midnight, the numbers at its start, those removed so far."""

    day: datetime
    base: int
    removed: int


def count_numbers(cur: Any) -> int:
    """Distinct numbers in broker_phone (the blacklist), as this transaction sees it."""
    cur.execute("SELECT COUNT(DISTINCT phone) FROM broker_phone")
    return int(cur.fetchone()[0])


def open_day(cur: Any, day: datetime) -> DayWindow:
    """Lock the day's rows and return the window; a new day starts at 0 from a fresh count."""
    cur.executemany(_ENSURE, [(DAY_CURSOR, day), (BASE_CURSOR, day)])
    cur.execute(_LOCK, (DAY_CURSOR, BASE_CURSOR))
    rows = {name: (int(count or 0), when) for name, count, when in cur.fetchall()}
    removed, removed_day = rows[DAY_CURSOR]
    base, base_day = rows[BASE_CURSOR]
    if removed_day is not None and removed_day == base_day and removed_day >= day:
        if not base:
            base = count_numbers(cur)
        return DayWindow(removed_day, base, removed)
    return DayWindow(day, count_numbers(cur), 0)


def record_day(cur: Any, window: DayWindow, removed_now: int) -> int:
    """Add a run's removals to its day (same transaction); return the day's total."""
    total = window.removed + removed_now
    cur.executemany(
        _SET,
        [(total, window.day, DAY_CURSOR), (window.base, window.day, BASE_CURSOR)],
    )
    return total
