"""What one broker_phone_sync run syncs: its interval, everything, or since the high-water.

The policy of the DAG's runs, given what the task read (Params, Variables, the run
type) as plain values:

- a full resync when the run asks for one, or when no window ever completed (an
  interval alone would leave the blacklist almost empty and brokers' calls would
  be charged);
- a scheduled run does a full resync instead of its interval once the last one
  is ``full_resync_every_hours`` old; when the removal guard refuses it, the
  run's interval is synced all the same, then ``PeriodicResyncRefused``;
- a run without a data interval (a plain manual trigger) syncs from the
  high-water to now (``sync_since_high_water``, a full resync before any window).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from sublessor_billing.broker_sync import sync
from sublessor_billing.broker_sync.limits import Allowance
from sublessor_billing.broker_sync.removal import MassRemoval
from sublessor_billing.broker_sync.report import SyncReport
from sublessor_billing.broker_sync.rules import MalformedMobile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What one run was asked to do, read and checked (Params, Variables, run type) by its task.

    ``start`` / ``end``: the run's aware data interval, both None for a run without
    one. ``scheduled``: a run the timetable made (only those resync periodically).
    ``allowance``: the manual run's ``allow_removals_up_to``, None for the day's share.
    """

    full_resync: bool
    scheduled: bool
    start: datetime | None
    end: datetime | None
    overlap_seconds: int
    full_resync_every_hours: int
    max_removal_share: float
    allowance: Allowance | None


class PeriodicResyncRefused(Exception):
    """The periodic full resync was refused; ``report``: the run's interval, when it synced.

    The full resync's cursor does not move, so every scheduled run tries it again
    until someone decides; meanwhile each run's interval (with its own guard)
    keeps new brokers blacklisted.
    """

    def __init__(self, message: str, *, report: SyncReport | None) -> None:
        super().__init__(message)
        self.report = report


def sync_run(
    source: Any,
    target: Any,
    request: RunRequest,
    *,
    page_size: int = sync.PAGE_SIZE,
    source_name: str = "anjuke_db",
) -> SyncReport:
    """Sync what one run of the DAG should (module docstring); return its report.

    Raises what the syncs raise (``MalformedMobile`` after every valid row is
    written, ``MassRemoval`` having written nothing) and ``PeriodicResyncRefused``.
    """
    start, end, overlap = request.start, request.end, request.overlap_seconds
    kwargs: dict[str, Any] = {
        "page_size": page_size,
        "source_name": source_name,
        "max_removal_share": request.max_removal_share,
        "allowance": request.allowance,
    }
    if request.full_resync:
        return sync.full_resync(source, target, **kwargs)
    if start is None or end is None:
        return sync.sync_since_high_water(source, target, overlap_seconds=overlap, **kwargs)
    if sync.high_water(target) is None:
        log.warning("broker_phone_sync has never completed a window: doing a full resync")
        return sync.full_resync(source, target, **kwargs)

    def interval() -> SyncReport:
        return sync.sync_interval(
            source, target, start=start, end=end, overlap_seconds=overlap, **kwargs
        )

    every = request.full_resync_every_hours
    if request.scheduled and sync.periodic_full_resync_due(
        source, target, every_hours=every, source_name=source_name
    ):
        log.warning(
            "broker_phone_sync: last full resync is %s h old or more (%s): doing one now",
            every,
            sync.last_full_resync(target),
        )
        try:
            return sync.full_resync(source, target, **kwargs)
        except MassRemoval as refused:
            _interval_after_refusal(refused, interval)
    return interval()


def _interval_after_refusal(refused: MassRemoval, interval: Callable[[], SyncReport]) -> NoReturn:
    """A periodic full resync refused: sync the run's interval all the same, then raise."""
    log.error(
        "broker_phone_sync: the periodic full resync refused; syncing the interval: %s", refused
    )
    try:
        report = interval()
    except MassRemoval as also:
        raise PeriodicResyncRefused(
            f"{refused} This run's interval was refused too, so nothing was synced: {also}",
            report=None,
        ) from refused
    except MalformedMobile as malformed:
        raise PeriodicResyncRefused(
            f"{refused} This run synced its interval all the same, but: {malformed}",
            report=malformed.report,
        ) from refused
    raise PeriodicResyncRefused(
        f"{refused} This run synced its interval [{report.window_start}, {report.window_end}) "
        f"all the same (added {report.added}, changed {report.changed}, removed "
        f"{report.removed}), so new brokers are blacklisted; the next scheduled run tries the "
        "full resync again.",
        report=report,
    ) from refused
