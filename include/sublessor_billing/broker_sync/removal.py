"""The removal guard: a sync that would take too many numbers out of the blacklist refuses.

An empty or wrong source (restored empty, truncated, the connection naming
another schema) looks to a full resync like every broker left: it would empty
the blacklist and every broker's call would be charged. So the guard counts
the *numbers* that leave broker_phone: a deleted broker's number and a changed
mobile's old number alike, each number once, and only when no broker still has
it once the sync is done. It decides inside the sync's one transaction
(``write.write_in_one_transaction``), after the writes and before the commit:
a refusal rolls everything back.

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
# Numbers taken from brokers by this run: a connection's own temporary table. Its
# column is broker_phone.phone's own (type, character set, collation), copied, not
# the database's default: a database created with another default collation
# (COLLATE utf8mb4_unicode_ci, MariaDB 11.4+) must not make them incomparable.
_DEPARTED = "broker_phone_sync_departed"
_CREATE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_DEPARTED} (PRIMARY KEY (phone)) ENGINE=InnoDB"
    " SELECT phone FROM broker_phone LIMIT 0"
)
_NOTE = f"INSERT IGNORE INTO {_DEPARTED} (phone) VALUES (%s)"
_LEAVING = (
    f"SELECT COUNT(*) FROM {_DEPARTED} d"
    " WHERE NOT EXISTS (SELECT 1 FROM broker_phone b WHERE b.phone = d.phone)"
)

_WHAT_TO_DO = (
    " Nothing was written. An empty or wrong source looks like this: check that the "
    "connection {source} points at the broker system's database and that ajk_brokerextend "
    "holds its brokers. If the brokers really left, trigger broker_phone_sync manually once "
    'with {{"' + PARAM + '": {leaving}}} (the numbers this run may remove; add '
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

    def __post_init__(self) -> None:
        self.max_share = check_share(self.max_share)
        if self.max_share >= 1 and self.allowance is None:
            log.warning(
                "Variable %s is 1: the removal guard is off, a sync may empty broker_phone. "
                "Set it back to a share such as 0.2 (or delete it) once the removals are done.",
                SHARE_VARIABLE,
            )

    def begin(self, cur: Any) -> None:
        """Open the run's count (first in its transaction, before any write)."""
        cur.execute(_CREATE)
        cur.execute(f"DELETE FROM {_DEPARTED}")  # an earlier run's, on this connection
        self.window = open_day(cur, day_start(self.now or _server_now(cur)))
        if self.allowance is not None:
            self.allowed = allowances.open_allowance(cur, self.allowance)

    def note(self, cur: Any, departed: list[str]) -> None:
        """Remember numbers a page took from brokers (each once)."""
        if departed:
            cur.executemany(_NOTE, [(phone,) for phone in departed])

    def decide(self, cur: Any, report: SyncReport) -> None:
        """After the writes: refuse (the caller rolls back) or record the removals."""
        cur.execute(_LEAVING)
        leaving = int(cur.fetchone()[0])
        window = self.window
        report.numbers_removed, report.day_base = leaving, window.base
        report.day_removed = window.removed
        if self.allowance is not None:
            up_to, used = self.allowed
            if not within_allowance(leaving, up_to=up_to, used=used):
                raise self._refusal(report, self._over_allowance(up_to, used), leaving)
            allowances.spend(cur, self.allowance.run_id, used + leaving)
            # The day starts again from the table this run leaves: its removals are a
            # person's decision, and later runs that day get the share of what is left.
            restarted = DayWindow(window.day, count_numbers(cur), 0)
            record_day(cur, restarted, 0)
            report.day_base, report.day_removed = restarted.base, 0
            log.warning(
                "broker_phone_sync %s removes %s under %s=%s of run %s (%s before)",
                report.mode,
                plural(leaving, "number"),
                PARAM,
                up_to,
                self.allowance.run_id,
                used,
            )
            return
        if not within_day_share(
            leaving, day_removed=window.removed, day_base=window.base, max_share=self.max_share
        ):
            raise self._refusal(report, self._over_share(leaving), leaving)
        report.day_removed = record_day(cur, window, leaving)

    def end(self, conn: Any) -> None:
        """Drop the count (after the commit or the rollback)."""
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {_DEPARTED}")
        except Exception:  # the connection is gone: its temporary table went with it
            log.debug("Could not drop %s; the server drops it with the connection", _DEPARTED)

    def _refusal(self, report: SyncReport, why: str, leaving: int) -> MassRemoval:
        total = self.allowed[0] if self.allowance is not None else self.window.base
        with_mobile = report.added + report.changed + report.unchanged
        return MassRemoval(
            f"broker_phone_sync ({report.mode}) refused: it would remove "
            f"{plural(leaving, 'number')} from the blacklist (of {report.removed} removed brokers "
            f"and {report.changed} changed mobiles; a number counts once, when no broker has it "
            f"any more); {why} Of the {report.read} source rows read, "
            f"{with_mobile} have a mobile."
            + _WHAT_TO_DO.format(source=self.source_name, leaving=leaving),
            would_remove=leaving,
            total=total,
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
            "The day's count starts again at midnight Asia/Shanghai."
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
