"""One sync, one target transaction: its pages, the guard's decision, its deletes and cursors.

Every page is planned and its upserts written (rows locked, no commit); its
removals are only recorded (``departures``). Then the removal guard counts the
numbers that would leave the blacklist and refuses or accepts; only then are
the recorded rows deleted, in bounded chunks, the guard's counts and the
cursors written, and the transaction committed. Any failure on the way (a
refusal, a lost source or target, a timeout) rolls back the whole run: no
page, no delete, no cursor, no day count, no allowance record. Readers of
broker_phone (call judging) see the table as it was until the commit, then the
whole run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sublessor_billing.broker_sync import departures as departure_tables
from sublessor_billing.broker_sync import pages as page_writes
from sublessor_billing.broker_sync.removal import RemovalGuard
from sublessor_billing.broker_sync.report import SyncReport, count_page
from sublessor_billing.db.transaction import transaction

Page = tuple[list[tuple[Any, ...]], tuple[int, int | None] | None]
# Moves the run's cursors, given the cursor and the run's last page (None: no page).
CloseRun = Callable[[Any, Page | None], None]


def write_in_one_transaction(
    target: Any,
    pages: Iterable[Page],
    report: SyncReport,
    guard: RemovalGuard,
    close: CloseRun,
    *,
    chunk: int,
) -> None:
    """Write ``pages`` and ``close`` the run in one transaction, or nothing at all.

    A page's ``id_range`` (full resync) also removes the broker_phone rows in
    that range that the page does not keep (``pages.plan_page``). ``chunk``
    bounds the rows one statement reads or deletes.
    """
    last: Page | None = None
    departure_tables.create_tables(target)
    try:
        with transaction(target) as cur:
            departures = guard.begin(cur, chunk)
            for last in pages:
                rows, id_range = last
                changes = page_writes.plan_page(cur, rows, id_range, departures)
                page_writes.write_upserts(cur, changes)
                count_page(report, changes, read=len(rows))
            guard.decide(cur, report, departures)
            report.removed = departures.delete(cur)
            guard.record(cur, report)
            close(cur, last)
    finally:
        departure_tables.drop_tables(target)
