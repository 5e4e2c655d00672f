"""The filter rules of contracts/tables.md as plain functions (no database)."""

from __future__ import annotations

import enum
from bisect import bisect_right, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta


class FilterRule(enum.IntEnum):
    """``filter_rule`` of the call log (contracts/tables.md); 0 is ours: not judged yet."""

    UNJUDGED = 0
    VALID = 1
    NOT_CONNECTED = 2
    TOO_SHORT = 3
    REPEAT = 4
    BROKER = 5


Pair = tuple[str, int]

# A window wider than datetime's whole range (a Variable set absurdly high) is that range.
MAX_WINDOW_SECONDS = int((datetime.max - datetime.min).total_seconds()) + 1


@dataclass(frozen=True)
class Candidate:
    """An unjudged call, as much of it as the rules look at."""

    id: int
    caller_normalized: str
    sublessor_id: int
    status: int
    start_time: datetime
    duration: int

    @property
    def pair(self) -> Pair:
        return (self.caller_normalized, self.sublessor_id)


def base_rule(status: int, duration: int, short_threshold: int) -> FilterRule | None:
    """Rules 2 and 3, which need nothing but the call itself."""
    if status != 1:
        return FilterRule.NOT_CONNECTED
    if duration <= short_threshold:
        return FilterRule.TOO_SHORT
    return None


def window_delta(seconds: int) -> timedelta:
    """The repeat rule's window; one wider than datetime's whole range is clamped to it."""
    if seconds < 0:
        raise ValueError(f"the repeat window must be >= 0 seconds, got {seconds}")
    return timedelta(seconds=min(seconds, MAX_WINDOW_SECONDS))


def shift(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta`` clamped to datetime's range: a window around 9999-12-31 cannot overflow."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max if delta > timedelta(0) else datetime.min


def has_repeat(valid_starts: list[datetime], start: datetime, window: timedelta) -> bool:
    """True when a valid start lies strictly less than ``window`` before or after ``start``."""
    i = bisect_right(valid_starts, shift(start, -window))
    return i < len(valid_starts) and valid_starts[i] < shift(start, window)


def judge_calls(
    candidates: Iterable[Candidate],
    valid_starts: Mapping[Pair, list[datetime]],
    broker_phones: set[str],
    *,
    short_threshold: int,
    repeat_window: int,
) -> dict[int, FilterRule]:
    """Give each candidate its filter_rule, in order of start_time then id.

    ``valid_starts`` holds, per (caller, sublessor), the sorted start times of the
    calls already valid; calls found valid here are added to it, so later
    candidates of the same pair see them. A withheld caller ('') is never a
    repeat and never a broker.
    """
    window = window_delta(repeat_window)
    known = {pair: list(starts) for pair, starts in valid_starts.items()}
    decided: dict[int, FilterRule] = {}
    for call in sorted(candidates, key=lambda c: (c.start_time, c.id)):
        rule = base_rule(call.status, call.duration, short_threshold)
        if rule is None and call.caller_normalized:
            starts = known.setdefault(call.pair, [])
            if has_repeat(starts, call.start_time, window):
                rule = FilterRule.REPEAT
            elif call.caller_normalized in broker_phones:
                rule = FilterRule.BROKER
            else:
                insort(starts, call.start_time)
        decided[call.id] = FilterRule.VALID if rule is None else rule
    return decided


def needs_history(call: Candidate, short_threshold: int) -> bool:
    """Whether rules 4 and 5 can matter for this call (it passed rules 2 and 3, caller known)."""
    return (
        bool(call.caller_normalized)
        and base_rule(call.status, call.duration, short_threshold) is None
    )
