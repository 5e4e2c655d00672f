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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

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
from sublessor_billing.broker_sync.write import CloseRun, Page, write_in_one_transaction
from sublessor_billing.config import BROKER_PHONE_MAX_REMOVAL_SHARE
from sublessor_billing.db import job_cursor
from sublessor_billing.db.tables import JOB_CURSOR
from sublessor_billing.db.transaction import read_only

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
MAX_REMOVAL_SHARE = float(BROKER_PHONE_MAX_REMOVAL_SHARE.default)
CURSOR_NAME = "broker_phone_sync"
FULL_CURSOR_NAME = "broker_phone_sync_full"

# Not job_cursor.save: a run that finishes after a later one never moves position_time back.
_CURSOR = (
    f"INSERT INTO {JOB_CURSOR} (name, position_id, position_time) VALUES (%s, %s, %s)"
    " ON DUPLICATE KEY UPDATE"
    " position_id = IF(position_time IS NULL OR VALUES(position_time) >= position_time,"
    " VALUES(position_id), position_id),"
    " position_time = GREATEST(IFNULL(position_time, VALUES(position_time)), VALUES(position_time))"
)


class SyncOptions(TypedDict, total=False):
    """The keywords every sync takes (their defaults: ``_Run``).

    Removals are held to ``max_removal_share`` of the day, or to ``allowance``
    (the run's Param); ``now`` (aware) picks the day, the target's clock by default.
    """

    page_size: int
    source_name: str
    max_removal_share: float
    allowance: Allowance | None
    now: datetime | None


@dataclass
class _Run:
    """One sync: where it reads and writes, its options, and the guard on its removals."""

    source: Any
    target: Any
    page_size: int = PAGE_SIZE
    source_name: str = "anjuke_db"
    max_removal_share: float = MAX_REMOVAL_SHARE
    allowance: Allowance | None = None
    now: datetime | None = None
    guard: RemovalGuard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = RemovalGuard(
            self.max_removal_share, self.allowance, self.source_name, self.now
        )

    def write(self, pages: Iterable[Page], report: SyncReport, close: CloseRun) -> None:
        write_in_one_transaction(
            self.target, pages, report, self.guard, close, chunk=self.page_size
        )


@contextmanager
def _locked_run(source: Any, target: Any, options: SyncOptions) -> Iterator[_Run]:
    """Set up the run (its guard checks the share), then hold the target's sync lock."""
    run = _Run(source, target, **options)
    with sync_lock(target):
        yield run


def sync_interval(
    source: Any,
    target: Any,
    *,
    start: datetime,
    end: datetime,
    overlap_seconds: int,
    **options: Unpack[SyncOptions],
) -> SyncReport:
    """Sync the rows changed in the aware interval [start - overlap, end), read as local time.

    When the cursor's high-water lies before the interval (runs skipped while the
    DAG was paused, or a run that failed for good), the window starts there
    instead, less the overlap: a gap in the schedule never loses a change.
    """
    low, high = source_window(start, end, overlap_seconds)
    with _locked_run(source, target, options) as run:
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
        _sync_window(run, low, high, report)
    return finish(report)


def sync_since_high_water(
    source: Any, target: Any, *, overlap_seconds: int, **options: Unpack[SyncOptions]
) -> SyncReport:
    """Sync [high-water - overlap, source NOW()): a manual run that has no data interval.

    With no high-water yet (nothing ever synced) it is a full resync.
    """
    check_overlap(overlap_seconds)
    with _locked_run(source, target, options) as run:
        done_until = high_water(target)
        if done_until is None:
            log.warning("broker_phone_sync has never completed a window: doing a full resync")
            report = _full_resync_locked(run)
        else:
            source_time = source_now(source, run.source_name)
            report = SyncReport("since_high_water", resumed_from=done_until.isoformat(sep=" "))
            low = done_until - timedelta(seconds=overlap_seconds)
            high = max(source_time, low)
            _sync_window(run, low, high, report)
    return finish(report)


def _sync_window(run: _Run, low: datetime, high: datetime, report: SyncReport) -> None:
    """Sync every row stamped in [low, high) (local time); then ``high`` is the high-water.

    Malformed rows do not hold the window back: they are reported at the end.
    """
    report.window_start, report.window_end = low.isoformat(sep=" "), high.isoformat(sep=" ")

    def close(cur: Any, _last: Page | None) -> None:
        cur.execute(_CURSOR, (CURSOR_NAME, None, high))

    run.write(window_pages(run.source, run.source_name, run.page_size, low, high), report, close)


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


def full_resync(source: Any, target: Any, **options: Unpack[SyncOptions]) -> SyncReport:
    """Make broker_phone equal to the source: upsert every mobile, remove every other row.

    Malformed rows keep what broker_phone had for them and are reported at the end.
    """
    with _locked_run(source, target, options) as run:
        report = _full_resync_locked(run)
    return finish(report)


def _full_resync_locked(run: _Run) -> SyncReport:
    report = SyncReport("full")
    if not run.guard.off:
        run.guard.expect_source_mobiles(mobiles_count(run.source, run.source_name))
    # Every change after this moment (source clock) is stamped later: the
    # incremental runs need not look further back than it.
    started = source_now(run.source, run.source_name)

    def close(cur: Any, last: Page | None) -> None:
        rows, id_range = last  # a full resync always has a (last, short) page
        position = int(rows[-1][0]) if rows else id_range[0]
        cur.execute(_CURSOR, (CURSOR_NAME, None, started))
        cur.execute(_CURSOR, (FULL_CURSOR_NAME, position, started))

    run.write(full_pages(run.source, run.source_name, run.page_size), report, close)
    return report


def _cursor_time(target: Any, name: str) -> datetime | None:
    with read_only(target) as cur:
        position = job_cursor.read(cur, name)
    return position.position_time if position else None
