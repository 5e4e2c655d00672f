"""The mass-removal guard: a sync that would remove too much of broker_phone refuses.

An empty or wrong source (restored empty, truncated, the connection naming
another schema) looks to a full resync like every broker left: it would empty
the blacklist and every broker's call would be charged. So before any page is
written the sync reads its pages once without writing and counts what it would
remove; more than ``max_share`` of broker_phone refuses with nothing written.
While writing, removals are held to the same limit, in case the source loses
rows after the count.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sublessor_billing.broker_sync.pages import count_rows, page_changes
from sublessor_billing.config import BROKER_PHONE_MAX_REMOVAL_SHARE, SettingError

log = logging.getLogger(__name__)

Page = tuple[list[tuple[Any, ...]], tuple[int, int | None] | None]

_WHAT_TO_DO = (
    "An empty or wrong source looks like this: check that the connection {source} points at "
    "the broker system's database and that ajk_brokerextend holds its brokers. If the brokers "
    'really left, trigger broker_phone_sync once with {{"allow_mass_removal": true}} (add '
    '"full_resync": true for a full resync), or raise the Variable '
    "broker_phone_max_removal_share. Until then every run refuses the same way."
)


class MassRemoval(RuntimeError):
    """A sync refused to remove more than the allowed share of broker_phone."""

    def __init__(self, message: str, *, would_remove: int, total: int) -> None:
        super().__init__(message)
        self.would_remove = would_remove
        self.total = total


@dataclass(frozen=True)
class RemovalPlan:
    """What a read of the sync's pages found: rows it would remove, rows read, mobiles."""

    removals: int
    read: int
    with_mobile: int


def _has_rows(target: Any) -> bool:
    with target.cursor() as cur:
        cur.execute("SELECT 1 FROM broker_phone LIMIT 1")
        found = cur.fetchone() is not None
    target.rollback()
    return found


def check_share(max_share: float) -> float:
    """The share as given, or a SettingError saying what to set."""
    if isinstance(max_share, bool) or not isinstance(max_share, int | float):
        max_share = math.nan
    if not 0 <= max_share <= 1:  # NaN fails too
        name = BROKER_PHONE_MAX_REMOVAL_SHARE.name
        raise SettingError(
            f"max_removal_share (Variable {name!r}) must be a number between 0 and 1; got "
            f"{max_share!r}. Set it in Admin -> Variables (0.2 is 20 %), or delete it to use "
            f"the default {BROKER_PHONE_MAX_REMOVAL_SHARE.default}."
        )
    return float(max_share)


def exceeds(removals: int, total: int, max_share: float) -> bool:
    """More than ``max_share`` of ``total`` rows? Removing 0 of 0 never is."""
    return total > 0 and removals / total > max_share


def plan_removals(target: Any, pages: Iterable[Page]) -> RemovalPlan:
    """Read the pages against broker_phone without writing or locking; count what they remove."""
    removals = read = with_mobile = 0
    try:
        for rows, id_range in pages:
            with target.cursor() as cur:
                changes = page_changes(cur, rows, id_range, lock=False)
            target.rollback()
            removals += len(changes.removals)
            read += len(rows)
            with_mobile += changes.added + changes.changed + changes.unchanged
    finally:
        target.rollback()
    return RemovalPlan(removals, read, with_mobile)


@dataclass
class RemovalGuard:
    """The limit of one sync: ``max_share`` of broker_phone, unless ``allowed`` (the Param)."""

    max_share: float
    allowed: bool = False
    source_name: str = "anjuke_db"
    total: int | None = None  # broker_phone's rows, counted when a removal first needs them
    planned: int = 0

    def __post_init__(self) -> None:
        self.max_share = check_share(self.max_share)
        if self.max_share >= 1 and not self.allowed:
            log.warning(
                "Variable %s is 1: the removal guard is off, a sync may empty broker_phone. "
                "Set it back to a share such as 0.2 (or delete it) once the removals are done.",
                BROKER_PHONE_MAX_REMOVAL_SHARE.name,
            )

    @property
    def active(self) -> bool:
        return not self.allowed and self.max_share < 1

    def check(self, target: Any, pages: Iterable[Page], mode: str) -> None:
        """Refuse, before anything is written, a sync that would remove too much."""
        if self.allowed:
            log.warning("broker_phone_sync %s: allow_mass_removal is set: no removal limit", mode)
        if not self.active or not _has_rows(target):
            return  # an empty broker_phone (the first run) has nothing to lose: 0 of 0
        plan = plan_removals(target, pages)
        self.planned = plan.removals
        if not plan.removals:
            return
        total = self._total(target)
        target.rollback()
        share = self._share(plan.removals)
        if exceeds(plan.removals, total, self.max_share):
            raise MassRemoval(
                f"broker_phone_sync ({mode}) refused: it would remove {plan.removals} of "
                f"{total} broker_phone rows ({share} > {self._limit()}, Variable "
                f"broker_phone_max_removal_share); of the {plan.read} source rows read, "
                f"{plan.with_mobile} have a mobile. Nothing was written. "
                + _WHAT_TO_DO.format(source=self.source_name),
                would_remove=plan.removals,
                total=total,
            )
        log.info(
            "broker_phone_sync %s will remove %s of %s broker_phone rows (%s, limit %s)",
            mode,
            plan.removals,
            total,
            share,
            self._limit(),
        )

    def admit(self, target: Any, removed: int, more: int, mode: str) -> None:
        """Refuse a page whose removals would take the sync past the limit (inside its transaction)."""
        if not self.active or not more:
            return
        total = self._total(target)
        if not exceeds(removed + more, total, self.max_share):
            return
        raise MassRemoval(
            f"broker_phone_sync ({mode}) stopped: the source changed while it was synced: the "
            f"next page would bring the removals to {removed + more} of {total} "
            f"broker_phone rows ({self._share(removed + more)} > {self._limit()}) where the "
            f"check before writing found {self.planned}. It removed {removed} of {total} "
            "before stopping, within the limit; that page and the rest are not written. "
            + _WHAT_TO_DO.format(source=self.source_name),
            would_remove=removed + more,
            total=total,
        )

    def _total(self, target: Any) -> int:
        if self.total is None:
            with target.cursor() as cur:
                self.total = count_rows(cur)
        return self.total

    def _share(self, removals: int) -> str:
        return f"{100 * removals / self.total:.1f}%" if self.total else "0.0%"

    def _limit(self) -> str:
        return f"{100 * self.max_share:.1f}%"
