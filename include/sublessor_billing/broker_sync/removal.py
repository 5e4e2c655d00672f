"""The removal guard: a sync that would take too many numbers out of the blacklist refuses.

An empty or wrong source (restored empty, truncated, the connection naming
another schema) looks to a full resync like every broker left: it would empty
the blacklist and every broker's call would be charged. So the guard counts
the *numbers* that leave broker_phone: a deleted broker's number and a changed
mobile's old number alike, each number once, and only when no broker still has
it once the sync is done. It decides inside the sync's one transaction
(``write.write_in_one_transaction``), after the pages are planned and their
upserts written, before any row is deleted (``departures``): a refusal rolls
the upserts back and has deleted nothing. A full resync is also refused before
any page when the source has too few mobiles for the table to keep its numbers
(``expect_source_mobiles``).

Limits (``limits``): the share of the numbers broker_phone had at the start of
the day, for all the day's runs together (``window``); or the run's allowance
(Param ``allow_removals_up_to``, recorded by ``allowance``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sublessor_billing.broker_sync import allowance as allowances
from sublessor_billing.broker_sync.departures import Departures
from sublessor_billing.broker_sync.limits import (
    PARAM,
    Allowance,
    check_share,
    day_start,
    most_within,
    plural,
    within_allowance,
    within_day_share,
)
from sublessor_billing.broker_sync.window import DayWindow, count_numbers, open_day, record_day
from sublessor_billing.config import BROKER_PHONE_MAX_REMOVAL_SHARE

if TYPE_CHECKING:
    from sublessor_billing.broker_sync.report import SyncReport

log = logging.getLogger(__name__)

SHARE_VARIABLE = BROKER_PHONE_MAX_REMOVAL_SHARE.name

_WHAT_TO_DO = (
    " Nothing was written. An empty or wrong source looks like this: check that the "
    "connection {source} points at the broker system's database and that ajk_brokerextend "
    "holds its brokers. If the brokers really left, trigger broker_phone_sync manually once "
    'with {{"' + PARAM + '": {leaving}}} (the numbers this run may remove{at_least}; add '
    '"full_resync": true for a full resync), or raise the Variable ' + SHARE_VARIABLE + "."
)


class MassRemoval(RuntimeError):
    """A sync refused to take more numbers out of broker_phone than it may."""

    def __init__(self, message: str, *, would_remove: int, total: int) -> None:
        super().__init__(message)
        self.would_remove = would_remove
        self.total = total


@dataclass
class RemovalGuard:
    """The limit of one sync: the day's share of broker_phone, or the run's ``allowance``.

    ``now`` (aware) picks the day; by default the target server's UTC clock,
    one clock for every worker.
    """

    max_share: float
    allowance: Allowance | None = None
    source_name: str = "anjuke_db"
    now: datetime | None = None
    window: DayWindow | None = field(default=None, init=False)
    allowed: tuple[int, int] | None = field(default=None, init=False)  # (up_to, used)
    expired: allowances.OpenAllowance | None = field(default=None, init=False)
    source_mobiles: int | None = field(default=None, init=False)
    leaving: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.max_share = check_share(self.max_share)
        if self.off:
            log.warning(
                "Variable %s is 1: the removal guard is off, a sync may empty broker_phone. "
                "Set it back to a share such as 0.2 (or delete it) once the removals are done.",
                SHARE_VARIABLE,
            )

    @property
    def off(self) -> bool:
        return self.max_share >= 1 and self.allowance is None

    def expect_source_mobiles(self, count: int) -> None:
        """A full resync: the source has ``count`` rows with a mobile (checked in ``begin``)."""
        self.source_mobiles = count

    def begin(self, cur: Any, chunk: int) -> Departures:
        """Open the run's count (first in its transaction, before any write).

        A full resync refuses here, before reading any page, when its source has
        far fewer rows with a mobile (under half) than the numbers broker_phone
        must keep to stay within the limit: after it, broker_phone could hold at
        most one number per such row, so the refusal is certain. A source closer
        to the limit goes through the pages, and the decision counts exactly.
        """
        departures = Departures(cur, chunk)
        self.window = open_day(cur, day_start(self.now or _server_now(cur)))
        if self.allowance is not None:
            recorded = allowances.open_allowance(cur, self.allowance)
            if recorded.expired:  # the share applies, as to any run
                self.expired, self.allowance = recorded, None
            else:
                self.allowed = (recorded.up_to, recorded.used)
        if self.source_mobiles is not None and not self.off:
            numbers = count_numbers(cur)
            must_keep = numbers - self._room()
            if self.source_mobiles * 2 < must_keep:
                raise self._early_refusal(numbers, numbers - self.source_mobiles)
        return departures

    def decide(self, cur: Any, report: SyncReport, departures: Departures) -> None:
        """After the pages, before any delete: refuse (the caller rolls back) or go on."""
        report.removed = departures.removing(cur)
        self.leaving = leaving = departures.leaving(cur)
        window = self.window
        report.numbers_removed, report.day_base = leaving, window.base
        report.day_removed = window.removed
        if self.allowance is not None:
            up_to, used = self.allowed
            if not within_allowance(leaving, up_to=up_to, used=used):
                raise self._refusal(report, self._over_allowance(up_to, used), leaving)
        elif not within_day_share(
            leaving, day_removed=window.removed, day_base=window.base, max_share=self.max_share
        ):
            raise self._refusal(report, self._over_share(leaving), leaving)

    def record(self, cur: Any, report: SyncReport) -> None:
        """After the deletes, in the same transaction: count the removals in the day or allowance."""
        window, leaving = self.window, self.leaving
        if self.allowance is None:
            report.day_removed = record_day(cur, window, leaving)
            return
        up_to, used = self.allowed
        allowances.spend(cur, self.allowance.run_id, used + leaving)
        # The allowance's removals are a person's decision: they leave the day's base
        # (later runs that day get the share of what is left), and what the share
        # already let go today still counts: an allowance that removed nothing
        # gives the day nothing back.
        restarted = DayWindow(window.day, max(0, window.base - leaving), window.removed)
        record_day(cur, restarted, 0)
        report.day_base, report.day_removed = restarted.base, restarted.removed
        log.warning(
            "broker_phone_sync %s removes %s under %s=%s of run %s (%s before)",
            report.mode,
            plural(leaving, "number"),
            PARAM,
            up_to,
            self.allowance.run_id,
            used,
        )

    def _room(self) -> int:
        """How many numbers this sync may still remove."""
        if self.allowance is not None:
            up_to, used = self.allowed
            return max(up_to - used, 0)
        window = self.window
        return max(most_within(window.base, self.max_share) - window.removed, 0)

    def _total(self) -> int:
        return self.allowed[0] if self.allowance is not None else self.window.base

    def _why(self, leaving: int) -> str:
        if self.allowance is not None:
            return self._over_allowance(*self.allowed)
        return self._over_share(leaving)

    def _early_refusal(self, numbers: int, at_least: int) -> MassRemoval:
        exact = self.source_mobiles == 0
        count = plural(at_least, "number") if exact else f"at least {plural(at_least, 'number')}"
        return MassRemoval(
            f"broker_phone_sync (full) refused before reading a page: it would remove {count} "
            f"from the blacklist: broker_phone has {plural(numbers, 'number')} and the source "
            f"{self.source_name} only {plural(self.source_mobiles, 'row')} with a mobile; "
            f"{self._why(at_least)}"
            + _WHAT_TO_DO.format(
                source=self.source_name,
                leaving=at_least,
                at_least=""
                if exact
                else ", at least this many: a run that goes further counts them exactly",
            ),
            would_remove=at_least,
            total=self._total(),
        )

    def _refusal(self, report: SyncReport, why: str, leaving: int) -> MassRemoval:
        with_mobile = report.added + report.changed + report.unchanged
        return MassRemoval(
            f"broker_phone_sync ({report.mode}) refused: it would remove "
            f"{plural(leaving, 'number')} from the blacklist (of {report.removed} removed brokers "
            f"and {report.changed} changed mobiles; a number counts once, when no broker has it "
            f"any more); {why} Of the {report.read} source rows read, "
            f"{with_mobile} have a mobile."
            + _WHAT_TO_DO.format(source=self.source_name, leaving=leaving, at_least=""),
            would_remove=leaving,
            total=self._total(),
        )

    def _over_share(self, leaving: int) -> str:
        window = self.window
        total = window.removed + leaving
        share = f"{100 * total / window.base:.1f}%" if window.base else "all"
        return (
            f"with the {window.removed} already removed today (Asia/Shanghai day "
            f"{window.day:%Y-%m-%d}) that is {total} of {window.base} numbers broker_phone "
            f"had at the start of the day ({share} > {100 * self.max_share:.1f}%, Variable "
            f"{SHARE_VARIABLE}: at most {most_within(window.base, self.max_share)} a day). "
            "The day's count starts again at midnight Asia/Shanghai." + self._expiry_note()
        )

    def _expiry_note(self) -> str:
        if self.expired is None:
            return ""
        return (
            f" This run's {PARAM}={self.expired.up_to} has expired: first used at "
            f"{self.expired.first_used:%Y-%m-%d %H:%M:%S}, more than {allowances.VALID_HOURS} h "
            "ago; to allow removals, trigger a new run."
        )

    def _over_allowance(self, up_to: int, used: int) -> str:
        if not used:
            return f"this run's {PARAM} is {up_to}."
        return (
            f"this run ({self.allowance.run_id}) has {max(up_to - used, 0)} left of {PARAM} "
            f"{up_to} (its earlier tries removed {used})."
        )


def _server_now(cur: Any) -> datetime:
    cur.execute("SELECT UTC_TIMESTAMP()")
    return cur.fetchone()[0].replace(tzinfo=UTC)
