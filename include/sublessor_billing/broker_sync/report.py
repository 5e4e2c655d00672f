"""What one broker_phone_sync did, and the failure it ends with when rows were malformed."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sublessor_billing.broker_sync.rules import MAX_NAMED_MALFORMED, MalformedMobile, MalformedRow

if TYPE_CHECKING:
    from sublessor_billing.broker_sync.pages import PageChanges

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What one sync did; ``added``/``changed``/``removed`` count broker_phone rows.

    ``numbers_removed``: numbers that left the blacklist (no broker has them any
    more); ``day_removed``/``day_base``: the day's removals under the share and the
    numbers at the start of the day (``window``). ``implausible``: rows read whose
    number was synced but is too short or too long to be a phone number.
    """

    mode: str
    window_start: str | None = None
    window_end: str | None = None
    read: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    pages: int = 0
    resumed_from: str | None = None
    malformed: int = 0
    malformed_rows: list[MalformedRow] = field(default_factory=list)  # the first ones, masked
    numbers_removed: int = 0
    day_removed: int = 0
    day_base: int = 0
    implausible: int = 0
    implausible_rows: list[MalformedRow] = field(default_factory=list)  # the first ones, masked

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def note_malformed(report: SyncReport, bad: list[MalformedRow]) -> None:
    for row in bad:
        log.warning("broker_phone_sync skips malformed %s", row)
    report.malformed += len(bad)
    room = MAX_NAMED_MALFORMED - len(report.malformed_rows)
    report.malformed_rows.extend(bad[: max(room, 0)])


def note_implausible(report: SyncReport, odd: list[MalformedRow]) -> None:
    """Count implausible numbers; log the first ones masked, then only how many there were."""
    room = MAX_NAMED_MALFORMED - len(report.implausible_rows)
    for row in odd[: max(room, 0)]:
        log.warning("broker_phone_sync syncs an implausible number: %s", row)
    report.implausible += len(odd)
    report.implausible_rows.extend(odd[: max(room, 0)])


def count_page(report: SyncReport, changes: PageChanges, *, read: int) -> None:
    """Add a planned page to the report (``removed`` is counted once the sync deletes)."""
    note_malformed(report, changes.malformed)
    note_implausible(report, changes.implausible)
    report.added += changes.added
    report.changed += changes.changed
    report.unchanged += changes.unchanged
    report.read += read
    report.pages += 1


def finish(report: SyncReport) -> SyncReport:
    """Log the report; fail naming the malformed rows once everything else is written."""
    log_report(report)
    if report.malformed:
        raise MalformedMobile(report.malformed_rows, total=report.malformed, report=report)
    return report


def log_report(report: SyncReport) -> None:
    log.info(
        "broker_phone_sync %s [%s, %s): read %s rows in %s pages;"
        " added %s, changed %s, removed %s, unchanged %s, malformed %s, implausible %s;"
        " numbers removed %s (today %s of %s at the start of the day)",
        report.mode,
        report.window_start,
        report.window_end,
        report.read,
        report.pages,
        report.added,
        report.changed,
        report.removed,
        report.unchanged,
        report.malformed,
        report.implausible,
        report.numbers_removed,
        report.day_removed,
        report.day_base,
    )
