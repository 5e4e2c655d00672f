"""Rules of the removal guard that need no database: the day, the share, the run's allowance.

A sync may remove numbers from the blacklist (broker_phone) within one of two
limits: the share, ``max_share`` of the numbers broker_phone had at the start of
the Asia/Shanghai day, for all the day's runs together; or, for one manually
triggered run, the count its Param ``allow_removals_up_to`` names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sublessor_billing.broker_sync.rules import to_source_time
from sublessor_billing.config import BROKER_PHONE_MAX_REMOVAL_SHARE, SettingError

PARAM = "allow_removals_up_to"
REPLACED_PARAM = "allow_mass_removal"
# Run types that may carry an allowance: a person triggered them for this purpose.
# A backfill applies its conf to every run it creates; scheduled and
# operator-triggered runs take their Params from code, for every run alike.
ALLOWANCE_RUN_TYPES = frozenset({"manual"})

_HOW_TO_ALLOW = (
    f'Trigger broker_phone_sync manually with {{"{PARAM}": N}} (N: how many numbers this '
    'run may remove; add "full_resync": true for a full resync).'
)


@dataclass(frozen=True)
class Allowance:
    """The run ``run_id`` may remove up to ``up_to`` numbers, its retries included."""

    run_id: str
    up_to: int

    def __post_init__(self) -> None:
        if not self.run_id or isinstance(self.up_to, bool) or not isinstance(self.up_to, int):
            raise SettingError(f"An allowance needs a run id and a count; got {self!r}")
        if self.up_to <= 0:
            raise SettingError(f"{PARAM} of run {self.run_id} must be above 0; got {self.up_to}")


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


def allowance_from_params(
    params: Mapping[str, Any], *, run_id: str | None, run_type: str | None
) -> Allowance | None:
    """Read the run's Param: None for 0 (the share applies); refuse what cannot be honoured."""
    if params.get(REPLACED_PARAM) not in (None, False):
        raise SettingError(
            f"Param {REPLACED_PARAM} was replaced by {PARAM}, a number of phone numbers the run "
            f"may remove (a bound, not a switch). {_HOW_TO_ALLOW}"
        )
    raw = params.get(PARAM)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise SettingError(
            f"Param {PARAM} must be a whole number of phone numbers, 0 or more (0: the Variable "
            f"{BROKER_PHONE_MAX_REMOVAL_SHARE.name} applies); got {raw!r}. {_HOW_TO_ALLOW}"
        )
    if raw == 0:
        return None
    if run_type == "backfill":
        raise SettingError(
            f"Param {PARAM} is for one manually triggered run, not on a backfill: a backfill's "
            f"conf goes to every run it creates. Backfill without it. {_HOW_TO_ALLOW}"
        )
    if run_type not in ALLOWANCE_RUN_TYPES or not run_id:
        raise SettingError(
            f"Param {PARAM} is honoured only on a manually triggered run; this run is "
            f"{run_type or 'not a DAG run'} ({run_id or 'no run id'}). Set the Param's default "
            f"back to 0. {_HOW_TO_ALLOW}"
        )
    return Allowance(run_id, raw)


def day_start(now: datetime) -> datetime:
    """Midnight (naive, Asia/Shanghai) that starts the day of the aware instant ``now``."""
    return to_source_time(now).replace(hour=0, minute=0, second=0, microsecond=0)


def exceeds(removals: int, total: int, max_share: float) -> bool:
    """More than ``max_share`` of ``total``? Removing 0 never is; anything out of 0 is."""
    if removals <= 0:
        return False
    return total <= 0 or removals / total > max_share


def most_within(total: int, max_share: float) -> int:
    """The largest count of ``total`` that is not more than ``max_share`` of it."""
    if total <= 0:
        return 0
    count = min(math.floor(total * max_share), total)
    while count < total and not exceeds(count + 1, total, max_share):
        count += 1
    while count > 0 and exceeds(count, total, max_share):
        count -= 1
    return count


def within_day_share(leaving: int, *, day_removed: int, day_base: int, max_share: float) -> bool:
    """May a run remove ``leaving`` numbers after the day's ``day_removed``? (1: no limit)."""
    if max_share >= 1 or leaving <= 0:
        return True
    return not exceeds(day_removed + leaving, day_base, max_share)


def within_allowance(leaving: int, *, up_to: int, used: int) -> bool:
    """May a run remove ``leaving`` numbers when earlier tries of it used ``used`` of ``up_to``?"""
    return leaving <= max(up_to - used, 0)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
