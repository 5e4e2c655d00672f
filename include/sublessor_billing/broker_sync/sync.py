"""Copy broker mobiles from anjuke_db.ajk_brokerextend into user_prop_db.broker_phone.

Functions take DB-API connections (mysqlclient) so that Airflow tasks, tests and
the benchmark share one code path. Each page is one target transaction that
also moves the ``job_cursor`` row; each page reads the source rows as they are
now, so re-reading a range (overlap, retry, backfill) is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sublessor_billing.broker_sync.lock import sync_lock
from sublessor_billing.broker_sync.report import SyncReport, finish, note_malformed
from sublessor_billing.broker_sync.rules import (
    check_overlap,
    full_resync_due,
    phones_for_page,
    source_window,
    to_source_time,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
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
_UPSERT = (
    "INSERT INTO broker_phone (broker_id, phone, source_updated_datetime) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE phone = VALUES(phone),"
    " source_updated_datetime = VALUES(source_updated_datetime)"
)
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
) -> SyncReport:
    """Sync the rows changed in the aware interval [start - overlap, end), read as local time.

    When the cursor's high-water lies before the interval (runs skipped while the
    DAG was paused, or a run that failed for good), the window starts there
    instead, less the overlap: a gap in the schedule never loses a change.
    """
    low, high = source_window(start, end, overlap_seconds)
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
        _sync_window(source, target, low, high, report, page_size, source_name)
    return finish(report)


def sync_since_high_water(
    source: Any,
    target: Any,
    *,
    overlap_seconds: int,
    page_size: int = PAGE_SIZE,
    source_name: str = "anjuke_db",
) -> SyncReport:
    """Sync [high-water - overlap, source NOW()): a manual run that has no data interval.

    With no high-water yet (nothing ever synced) it is a full resync.
    """
    check_overlap(overlap_seconds)
    with sync_lock(target):
        done_until = high_water(target)
        if done_until is None:
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            report = _full_resync_locked(source, target, page_size, source_name)
        else:
            now = source_now(source, source_name)
            report = SyncReport("since_high_water", resumed_from=done_until.isoformat(sep=" "))
            low = done_until - timedelta(seconds=overlap_seconds)
            _sync_window(source, target, low, max(now, low), report, page_size, source_name)
    return finish(report)


def _sync_window(
    source: Any,
    target: Any,
    low: datetime,
    high: datetime,
    report: SyncReport,
    page_size: int,
    source_name: str,
) -> None:
    """Sync every row stamped in [low, high) (local time); then ``high`` is the high-water."""
    report.window_start, report.window_end = low.isoformat(sep=" "), high.isoformat(sep=" ")
    for rows in _pages(source, source_name, page_size, _window_query(low, high, page_size)):
        last = (rows[-1][2], int(rows[-1][0]))
        _apply_page(target, rows, report, cursor=(_CURSOR, (CURSOR_NAME, last[1], last[0])))
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
    source: Any, target: Any, *, page_size: int = PAGE_SIZE, source_name: str = "anjuke_db"
) -> SyncReport:
    """Make broker_phone equal to the source: upsert every mobile, remove every other row.

    Malformed rows keep what broker_phone had for them and are reported at the end.
    """
    with sync_lock(target):
        report = _full_resync_locked(source, target, page_size, source_name)
    return finish(report)


def _full_resync_locked(source: Any, target: Any, page_size: int, source_name: str) -> SyncReport:
    report = SyncReport("full")
    # Every change after this moment (source clock) is stamped later: the
    # incremental runs need not look further back than it.
    started = source_now(source, source_name)
    previous = position = -1  # below every BrokerId, 0 included
    done = False
    while not done:
        rows = _read(source, source_name, _ALL_NEXT, (previous, page_size))
        # A short page is the last: it also owns every broker_id above it.
        done = len(rows) < page_size
        upper = None if done else int(rows[-1][0])
        position = int(rows[-1][0]) if rows else previous
        _apply_page(
            target,
            rows,
            report,
            cursor=(_FULL_PROGRESS, (FULL_CURSOR_NAME, position)),
            id_range=(previous, upper),
        )
        previous = upper if upper is not None else previous
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


def _window_query(low: datetime, high: datetime, page_size: int):
    def query(last: tuple[Any, ...] | None) -> tuple[str, tuple[Any, ...]]:
        if last is None:
            return _WINDOW_FIRST, (low, high, page_size)
        return _WINDOW_NEXT, (high, last[2], last[2], last[0], page_size)

    return query


def _pages(source: Any, source_name: str, page_size: int, query) -> Iterator[list[tuple[Any, ...]]]:
    last = None
    while True:
        sql, args = query(last)
        rows = _read(source, source_name, sql, args)
        if rows:
            yield rows
        if len(rows) < page_size:
            return
        last = rows[-1]


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
    *,
    cursor: tuple[str, tuple[Any, ...]],
    id_range: tuple[int, int | None] | None = None,
) -> None:
    """Write one page in one transaction; ``id_range`` (full resync) also removes unseen brokers.

    A malformed row is skipped: its broker keeps the broker_phone row it had (a
    number we cannot read is no reason to drop a known broker number, whose calls
    would then be charged); the row is reported when the sync ends.
    """
    wanted, bad = phones_for_page(rows)
    note_malformed(report, bad)
    kept = {row.broker_id for row in bad}
    with target.cursor() as cur:
        if id_range is None:
            existing = _existing_by_ids(cur, list(wanted))
        else:
            existing = _existing_in_range(cur, *id_range)
        upserts, removals = [], []
        for broker_id, (phone, updated) in wanted.items():
            old = existing.get(broker_id)
            if phone is None:
                if old is not None:
                    removals.append(broker_id)
                continue
            if old is None:
                report.added += 1
            elif old[0] != phone:
                report.changed += 1
            else:
                report.unchanged += 1
            if old != (phone, updated):
                upserts.append((broker_id, phone, updated))
        if id_range is not None:
            removals.extend(bid for bid in existing if bid not in wanted and bid not in kept)
        if upserts:
            cur.executemany(_UPSERT, upserts)
        if removals:
            cur.execute(
                f"DELETE FROM broker_phone WHERE broker_id IN ({', '.join(['%s'] * len(removals))})",
                removals,
            )
            report.removed += cur.rowcount
        cur.execute(*cursor)
    target.commit()
    report.read += len(rows)
    report.pages += 1


def _existing_by_ids(cur: Any, broker_ids: list[int]) -> dict[int, tuple[str, datetime]]:
    if not broker_ids:
        return {}
    cur.execute(
        "SELECT broker_id, phone, source_updated_datetime FROM broker_phone"
        f" WHERE broker_id IN ({', '.join(['%s'] * len(broker_ids))}) FOR UPDATE",
        broker_ids,
    )
    return {int(bid): (phone, updated) for bid, phone, updated in cur.fetchall()}


def _existing_in_range(cur: Any, above: int, upto: int | None) -> dict[int, tuple[str, datetime]]:
    if upto is None:
        cur.execute(
            "SELECT broker_id, phone, source_updated_datetime FROM broker_phone"
            " WHERE broker_id > %s FOR UPDATE",
            (above,),
        )
    else:
        cur.execute(
            "SELECT broker_id, phone, source_updated_datetime FROM broker_phone"
            " WHERE broker_id > %s AND broker_id <= %s FOR UPDATE",
            (above, upto),
        )
    return {int(bid): (phone, updated) for bid, phone, updated in cur.fetchall()}
