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

from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import BROKER_PHONE

DAY_CURSOR = "broker_phone_sync_day"
BASE_CURSOR = "broker_phone_sync_day_base"


@dataclass(frozen=True)
class DayWindow:
    """The day a run counts in: its midnight, the numbers at its start, those removed so far."""

    day: datetime
    base: int
    removed: int


def count_numbers(cur: Any) -> int:
    """Distinct numbers in broker_phone (the blacklist), as this transaction sees it."""
    cur.execute(f"SELECT COUNT(DISTINCT phone) FROM {BROKER_PHONE}")
    return int(cur.fetchone()[0])


def open_day(cur: Any, day: datetime) -> DayWindow:
    """Lock the day's rows and return the window; a new day starts at 0 from a fresh count."""
    names = (DAY_CURSOR, BASE_CURSOR)  # every run locks the two rows in this order
    for name in names:
        job_cursor.ensure(cur, name, 0, day)
    (removed, removed_day), (base, base_day) = (job_cursor.lock(cur, name) for name in names)
    removed, base = int(removed or 0), int(base or 0)
    if removed_day is not None and removed_day == base_day and removed_day >= day:
        if not base:
            base = count_numbers(cur)
        return DayWindow(removed_day, base, removed)
    return DayWindow(day, count_numbers(cur), 0)


def record_day(cur: Any, window: DayWindow, removed_now: int) -> int:
    """Add a run's removals to its day (same transaction); return the day's total."""
    total = window.removed + removed_now
    job_cursor.move(cur, DAY_CURSOR, total, window.day)
    job_cursor.move(cur, BASE_CURSOR, window.base, window.day)
    return total
