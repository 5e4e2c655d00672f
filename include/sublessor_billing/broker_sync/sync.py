"""Copy broker mobiles from anjuke_db.ajk_brokerextend into user_prop_db.broker_phone.

Functions take DB-API connections (mysqlclient) so that Airflow tasks, tests and
the benchmark share one code path. Each page is one target transaction that
also moves the ``job_cursor`` row; each page reads the source rows as they are
now, so re-reading a range (overlap, retry, backfill) is idempotent. Before the
first page is written, the pages are read once to count the removals
(``removal.RemovalGuard``): a sync that would remove more than
``max_removal_share`` of broker_phone writes nothing, unless ``allow_mass_removal``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.broker_sync.lock import sync_lock
from sublessor_billing.broker_sync.pages import page_changes, write_changes
from sublessor_billing.broker_sync.removal import MassRemoval, RemovalGuard
from sublessor_billing.broker_sync.report import SyncReport, count_page, finish
from sublessor_billing.broker_sync.rules import (
    check_overlap,
    full_resync_due,
    source_window,
    to_source_time,
)
from sublessor_billing.config import BROKER_PHONE_MAX_REMOVAL_SHARE

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
MAX_REMOVAL_SHARE = float(BROKER_PHONE_MAX_REMOVAL_SHARE.default)
CURSOR_NAME = "broker_phone_sync"
FULL_CURSOR_NAME = "broker_phone_sync_full"

_COLUMNS = "SELECT BrokerId, UserMobile, updated_datetime FROM ajk_brokerextend"
_WINDOW_FIRST = f"{_COLUMNS} WHERE updated_datetime >= %s AND updated_datetime < %s ORDER BY updated_datetime, BrokerId LIMIT %s"
_WINDOW_NEXT = (
    f"{_COLUMNS} WHERE updated_datetime < %s"
    " AND (updated_datetime > %s OR (updated_datetime = %s AND BrokerId > %s))"
    " ORDER BY updated_datetime, BrokerId LIMIT %s"
)
_ALL_NEXT = f"{_COLUMNS} WHERE BrokerId > %s ORDER BY BrokerId LIMIT %s"
# Progress of a full resync: the last BrokerId done; its completion time is kept as it is.
_FULL_PROGRESS = (
    "INSERT INTO job_cursor (name, position_id) VALUES (%s, %s)"
    " ON DUPLICATE KEY UPDATE position_id = VALUES(position_id)"
)
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
    allow_mass_removal: bool = False,
) -> SyncReport:
    """Sync the rows changed in the aware interval [start - overlap, end), read as local time.

    When the cursor's high-water lies before the interval (runs skipped while the
    DAG was paused, or a run that failed for good), the window starts there
    instead, less the overlap: a gap in the schedule never loses a change.
    """
    low, high = source_window(start, end, overlap_seconds)
    guard = RemovalGuard(max_removal_share, allow_mass_removal, source_name)
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
    allow_mass_removal: bool = False,
) -> SyncReport:
    """Sync [high-water - overlap, source NOW()): a manual run that has no data interval.

    With no high-water yet (nothing ever synced) it is a full resync.
    """
    check_overlap(overlap_seconds)
    guard = RemovalGuard(max_removal_share, allow_mass_removal, source_name)
    with sync_lock(target):
        done_until = high_water(target)
        if done_until is None:
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            report = _full_resync_locked(source, target, page_size, source_name, guard)
        else:
            now = source_now(source, source_name)
            report = SyncReport("since_high_water", resumed_from=done_until.isoformat(sep=" "))
            low = done_until - timedelta(seconds=overlap_seconds)
            high = max(now, low)
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
    """Sync every row stamped in [low, high) (local time); then ``high`` is the high-water."""
    report.window_start, report.window_end = low.isoformat(sep=" "), high.isoformat(sep=" ")
    guard.check(target, _window_pages(source, source_name, page_size, low, high), report.mode)
    for rows, _ in _window_pages(source, source_name, page_size, low, high):
        last = (rows[-1][2], int(rows[-1][0]))
        cursor = (_CURSOR, (CURSOR_NAME, last[1], last[0]))
        _apply_page(target, rows, report, guard, cursor=cursor)
    # The whole window is done (malformed rows included: they are reported at the
    # end): its end is the high-water, in the same kind of transaction.
    with target.cursor() as cur:
        cur.execute(_CURSOR, (CURSOR_NAME, None, high))
    target.commit()


def high_water(target: Any) -> datetime | None:
    """End of the last completed window (source local time); None before the first sync."""
    return _cursor_time(target, CURSOR_NAME)


def last_full_resync(target: Any) -> datetime | None:
    """Source time at which the last completed full resync started; None if none completed."""
    return _cursor_time(target, FULL_CURSOR_NAME)


def source_now(source: Any, source_name: str = "anjuke_db") -> datetime:
    """The source server's clock, the one ``updated_datetime`` is stamped with."""
    return _read(source, source_name, "SELECT NOW()", ())[0][0]


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
    allow_mass_removal: bool = False,
) -> SyncReport:
    """Make broker_phone equal to the source: upsert every mobile, remove every other row.

    Malformed rows keep what broker_phone had for them and are reported at the end.
    """
    guard = RemovalGuard(max_removal_share, allow_mass_removal, source_name)
    with sync_lock(target):
        report = _full_resync_locked(source, target, page_size, source_name, guard)
    return finish(report)


def _full_resync_locked(
    source: Any, target: Any, page_size: int, source_name: str, guard: RemovalGuard
) -> SyncReport:
    report = SyncReport("full")
    # Every change after this moment (source clock) is stamped later: the
    # incremental runs need not look further back than it.
    started = source_now(source, source_name)
    guard.check(target, _full_pages(source, source_name, page_size), report.mode)
    position = -1  # below every BrokerId, 0 included
    for rows, id_range in _full_pages(source, source_name, page_size):
        position = int(rows[-1][0]) if rows else id_range[0]
        cursor = (_FULL_PROGRESS, (FULL_CURSOR_NAME, position))
        _apply_page(target, rows, report, guard, cursor=cursor, id_range=id_range)
    with target.cursor() as cur:
        cur.execute(_CURSOR, (CURSOR_NAME, None, started))
        cur.execute(_CURSOR, (FULL_CURSOR_NAME, position, started))
    target.commit()
    return report


def _cursor_time(target: Any, name: str) -> datetime | None:
    with target.cursor() as cur:
        cur.execute("SELECT position_time FROM job_cursor WHERE name = %s", (name,))
        row = cur.fetchone()
    target.rollback()
    return row[0] if row else None


def _window_pages(
    source: Any, source_name: str, page_size: int, low: datetime, high: datetime
) -> Iterator[tuple[list[tuple[Any, ...]], None]]:
    """Keyset pages of the rows stamped in [low, high), on (updated_datetime, BrokerId)."""
    rows = _read(source, source_name, _WINDOW_FIRST, (low, high, page_size))
    while rows:
        yield rows, None
        if len(rows) < page_size:
            return
        last = rows[-1]
        args = (high, last[2], last[2], last[0], page_size)
        rows = _read(source, source_name, _WINDOW_NEXT, args)


def _full_pages(
    source: Any, source_name: str, page_size: int
) -> Iterator[tuple[list[tuple[Any, ...]], tuple[int, int | None]]]:
    """BrokerId pages with the range each owns: (last id before, its last id].

    A short page is the last: it also owns every broker_id above it. The first
    starts below every BrokerId, 0 included.
    """
    previous = -1
    while True:
        rows = _read(source, source_name, _ALL_NEXT, (previous, page_size))
        if len(rows) < page_size:
            yield rows, (previous, None)
            return
        upper = int(rows[-1][0])
        yield rows, (previous, upper)
        previous = upper


def _read(source: Any, source_name: str, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Read one page, then end the read transaction so the next page sees current rows."""
    try:
        with source.cursor() as cur:
            cur.execute(sql, args)
            rows = list(cur.fetchall())
        source.rollback()
    except getattr(source, "OperationalError", OSError) as exc:
        raise ConnectionError(
            f"Lost the source {source_name} while reading ajk_brokerextend: {exc}. "
            "Check the server and the connection; the task retries from the interval start."
        ) from exc
    return rows


def _apply_page(
    target: Any,
    rows: list[tuple[Any, ...]],
    report: SyncReport,
    guard: RemovalGuard,
    *,
    cursor: tuple[str, tuple[Any, ...]],
    id_range: tuple[int, int | None] | None = None,
) -> None:
    """Write one page in one transaction; ``id_range`` (full resync) also removes unseen brokers.

    A malformed row is skipped (``pages.page_changes``) and reported when the
    sync ends. A page that would take the removals past the guard's limit is
    rolled back and the sync stops.
    """
    try:
        with target.cursor() as cur:
            changes = page_changes(cur, rows, id_range)
            guard.admit(target, report.removed, len(changes.removals), report.mode)
            removed = write_changes(cur, changes)
            cur.execute(*cursor)
    except MassRemoval:
        target.rollback()
        raise
    target.commit()
    count_page(report, changes, removed=removed, read=len(rows))
