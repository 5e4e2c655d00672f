"""One sync, one target transaction: its pages, the guard's decision and its cursors.

Every page is written (rows locked, upserts, deletes) without a commit; then the
removal guard counts the numbers that left the blacklist and refuses or records
them; then the cursors move; then one commit. Any failure on the way (a
refusal, a lost source or target, a timeout) rolls back the whole run: no page,
no cursor, no day count, no allowance record. Readers of broker_phone (call
judging) see the table as it was until the commit, then the whole run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sublessor_billing.broker_sync import pages as page_writes
from sublessor_billing.broker_sync.removal import RemovalGuard
from sublessor_billing.broker_sync.report import SyncReport, count_page

Page = tuple[list[tuple[Any, ...]], tuple[int, int | None] | None]
# Moves the run's cursors, given the cursor and the run's last page (None: no page).
CloseRun = Callable[[Any, Page | None], None]


def write_in_one_transaction(
    target: Any,
    pages: Iterable[Page],
    report: SyncReport,
    guard: RemovalGuard,
    close: CloseRun,
) -> None:
    """Write ``pages`` and ``close`` the run in one transaction, or nothing at all.

    A page's ``id_range`` (full resync) also removes the broker_phone rows in
    that range that the page does not keep (``pages.page_changes``).
    """
    last: Page | None = None
    try:
        with target.cursor() as cur:
            guard.begin(cur)
            for last in pages:
                rows, id_range = last
                changes = page_writes.page_changes(cur, rows, id_range)
                guard.note(cur, changes.departed)
                removed = page_writes.write_changes(cur, changes)
                count_page(report, changes, removed=removed, read=len(rows))
            guard.decide(cur, report)
            close(cur, last)
        target.commit()
    except BaseException:
        target.rollback()
        raise
    finally:
        guard.end(target)
