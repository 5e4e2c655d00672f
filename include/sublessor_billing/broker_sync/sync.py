"""Copy broker mobiles from anjuke_db.ajk_brokerextend into user_prop_db.broker_phone.

Functions take DB-API connections (mysqlclient) so that Airflow tasks, tests and
the benchmark share one code path. A sync is one target transaction
(``write.write_in_one_transaction``): its pages, the removal guard's decision
(``removal.RemovalGuard``) and its ``job_cursor`` rows commit together, or
nothing does. Each page reads the source rows as they are now, so re-reading a
range (overlap, retry, backfill) is idempotent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.broker_sync.limits import Allowance
from sublessor_billing.broker_sync.lock import sync_lock
from sublessor_billing.broker_sync.removal import RemovalGuard
from sublessor_billing.broker_sync.report import SyncReport, finish
from sublessor_billing.broker_sync.rules import (
    check_overlap,
    full_resync_due,
    source_window,
    to_source_time,
)
from sublessor_billing.broker_sync.source import (
    full_pages,
    mobiles_count,
    source_now,
    window_pages,
)
from sublessor_billing.broker_sync.write import Page, write_in_one_transaction
from sublessor_billing.config import BROKER_PHONE_MAX_REMOVAL_SHARE

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
MAX_REMOVAL_SHARE = float(BROKER_PHONE_MAX_REMOVAL_SHARE.default)
CURSOR_NAME = "broker_phone_sync"
FULL_CURSOR_NAME = "broker_phone_sync_full"

_CURSOR = (
    "INSERT INTO job_cursor (name, position_id, position_time) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE"
    " position_id = IF(position_time IS NULL OR VALUES(position_time) >= position_time,"
    " VALUES(position_id), position_id),"
    " position_time = GREATEST(IFNULL(position_time, VALUES(position_time)), VALUES(position_time))"
)


def sync_interval(
    source: Any,
    target: Any,
    *,
    start: datetime,
    end: datetime,
    overlap_seconds: int,
    page_size: int = PAGE_SIZE,
    source_name: str = "anjuke_db",
    max_removal_share: float = MAX_REMOVAL_SHARE,
    allowance: Allowance | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """Sync the rows changed in the aware interval [start - overlap, end), read as local time.

    When the cursor's high-water lies before the interval (runs skipped while the
    DAG was paused, or a run that failed for good), the window starts there
    instead, less the overlap: a gap in the schedule never loses a change.
    Removals are held to ``max_removal_share`` of the day, or to ``allowance``
    (the run's Param); ``now`` (aware) picks the day, the target's clock by default.
    """
    low, high = source_window(start, end, overlap_seconds)
    guard = RemovalGuard(max_removal_share, allowance, source_name, now)
    with sync_lock(target):
        done_until = high_water(target)
        resumed_from = None
        if done_until is not None and done_until < to_source_time(start):
            low = min(low, done_until - timedelta(seconds=overlap_seconds))
            resumed_from = done_until.isoformat(sep=" ")
            log.warning(
                "broker_phone_sync high-water %s is before this interval: reading from %s",
                done_until,
                low,
            )
        report = SyncReport("incremental", resumed_from=resumed_from)
        _sync_window(source, target, low, high, report, page_size, source_name, guard)
    return finish(report)


def sync_since_high_water(
    source: Any,
    target: Any,
    *,
    overlap_seconds: int,
    page_size: int = PAGE_SIZE,
    source_name: str = "anjuke_db",
    max_removal_share: float = MAX_REMOVAL_SHARE,
    allowance: Allowance | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """Sync [high-water - overlap, source NOW()): a manual run that has no data interval.

    With no high-water yet (nothing ever synced) it is a full resync.
    """
    check_overlap(overlap_seconds)
    guard = RemovalGuard(max_removal_share, allowance, source_name, now)
    with sync_lock(target):
        done_until = high_water(target)
        if done_until is None:
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            report = _full_resync_locked(source, target, page_size, source_name, guard)
        else:
            source_time = source_now(source, source_name)
            report = SyncReport("since_high_water", resumed_from=done_until.isoformat(sep=" "))
            low = done_until - timedelta(seconds=overlap_seconds)
            high = max(source_time, low)
            _sync_window(source, target, low, high, report, page_size, source_name, guard)
    return finish(report)


def _sync_window(
    source: Any,
    target: Any,
    low: datetime,
    high: datetime,
    report: SyncReport,
    page_size: int,
    source_name: str,
    guard: RemovalGuard,
) -> None:
    """Sync every row stamped in [low, high) (local time); then ``high`` is the high-water.

    Malformed rows do not hold the window back: they are reported at the end.
    """
    report.window_start, report.window_end = low.isoformat(sep=" "), high.isoformat(sep=" ")

    def close(cur: Any, _last: Page | None) -> None:
        cur.execute(_CURSOR, (CURSOR_NAME, None, high))

    pages = window_pages(source, source_name, page_size, low, high)
    write_in_one_transaction(target, pages, report, guard, close, chunk=page_size)


def high_water(target: Any) -> datetime | None:
    """End of the last completed window (source local time); None before the first sync."""
    return _cursor_time(target, CURSOR_NAME)


def last_full_resync(target: Any) -> datetime | None:
    """Source time at which the last completed full resync started; None if none completed."""
    return _cursor_time(target, FULL_CURSOR_NAME)


def periodic_full_resync_due(
    source: Any, target: Any, *, every_hours: int, source_name: str = "anjuke_db"
) -> bool:
    """True when a scheduled run should rebuild everything (see ``rules.full_resync_due``)."""
    if every_hours <= 0:
        return False
    return full_resync_due(last_full_resync(target), source_now(source, source_name), every_hours)


def full_resync(
    source: Any,
    target: Any,
    *,
    page_size: int = PAGE_SIZE,
    source_name: str = "anjuke_db",
    max_removal_share: float = MAX_REMOVAL_SHARE,
    allowance: Allowance | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """Make broker_phone equal to the source: upsert every mobile, remove every other row.

    Malformed rows keep what broker_phone had for them and are reported at the end.
    """
    guard = RemovalGuard(max_removal_share, allowance, source_name, now)
    with sync_lock(target):
        report = _full_resync_locked(source, target, page_size, source_name, guard)
    return finish(report)


def _full_resync_locked(
    source: Any, target: Any, page_size: int, source_name: str, guard: RemovalGuard
) -> SyncReport:
    report = SyncReport("full")
    if not guard.off:
        guard.expect_source_mobiles(mobiles_count(source, source_name))
    # Every change after this moment (source clock) is stamped later: the
    # incremental runs need not look further back than it.
    started = source_now(source, source_name)

    def close(cur: Any, last: Page | None) -> None:
        rows, id_range = last  # a full resync always has a (last, short) page
        position = int(rows[-1][0]) if rows else id_range[0]
        cur.execute(_CURSOR, (CURSOR_NAME, None, started))
        cur.execute(_CURSOR, (FULL_CURSOR_NAME, position, started))

    pages = full_pages(source, source_name, page_size)
    write_in_one_transaction(target, pages, report, guard, close, chunk=page_size)
    return report


def _cursor_time(target: Any, name: str) -> datetime | None:
    with target.cursor() as cur:
        cur.execute("SELECT position_time FROM job_cursor WHERE name = %s", (name,))
        row = cur.fetchone()
    target.rollback()
    return row[0] if row else None
