"""Rules of the broker phone sync that need no database: time windows and mobiles.

The removal guard's own rules (the day, the share, the Param) are in ``limits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sublessor_billing.phone import mask_phone, normalize_phone

try:
    from zoneinfo import ZoneInfo

    SOURCE_TZ = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database: China has kept UTC+8 since 1991
    SOURCE_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# The overlap re-read before every interval: a long transaction on the broker
# system can commit a row whose updated_datetime is already in the past.
MIN_OVERLAP_SECONDS = 600

# Width of broker_phone.phone (migration 095): every number a UserMobile of the
# contract's VARCHAR(20) can normalize to fits, NFKC-widened characters included
# (at most 3 digits each: 60). Only a source beyond its contract makes more.
PHONE_MAX_DIGITS = 63


# Lengths of a plausible phone number once normalized (digits). A number outside
# them is still the broker's and is synced as normalized; the run counts it and
# logs it masked, for someone to look at the source row.
PLAUSIBLE_DIGITS = (5, 20)

# How many malformed (or implausible) rows one report or message names; the log
# names every malformed one.
MAX_NAMED_MALFORMED = 50


@dataclass(frozen=True)
class NotedRow:
    """A source row a report names: its BrokerId, its number masked (or its length) and why."""

    broker_id: int
    masked: str
    why: str

    def __str__(self) -> str:
        return f"BrokerId {self.broker_id} (UserMobile {self.masked}: {self.why})"


MalformedRow = NotedRow  # a row whose UserMobile cannot be compared


class MalformedMobile(ValueError):
    """Source rows whose UserMobile is not blank but has no digits (or too many to store).

    ``total`` counts every malformed row of the sync; ``rows`` holds the first
    ``MAX_NAMED_MALFORMED`` of them; ``report`` is the finished sync's report, if any.
    """

    def __init__(
        self, rows: list[MalformedRow], *, total: int | None = None, report: Any = None
    ) -> None:
        self.rows = list(rows)
        self.broker_ids = [row.broker_id for row in self.rows]
        self.total = len(self.rows) if total is None else total
        self.report = report
        shown = "; ".join(str(row) for row in self.rows[:MAX_NAMED_MALFORMED])
        more = self.total - min(len(self.rows), MAX_NAMED_MALFORMED)
        more_text = f"; and {more} more (each logged above)" if more > 0 else ""
        done = (
            "Every valid row was written and the window completed; the brokers above "
            "keep the broker_phone row they had. "
            if report is not None
            else ""
        )
        super().__init__(
            f"anjuke_db.ajk_brokerextend has {self.total} malformed UserMobile: "
            f"{shown}{more_text}. {done}"
            "Have the broker system correct (or empty) these rows: the fix moves "
            "updated_datetime and the next run syncs it. A retry of this interval fails "
            "again while a row is still malformed."
        )


def phone_for_broker(broker_id: int, raw_mobile: str | None) -> str | None:
    """Return the broker's normalized mobile, None when it is blank; raise when malformed.

    Any number with digits is the broker's, whatever its country or length: a
    caller dialling from it is the broker. Only a value with no digits at all
    (``'n/a'``, ``'无'``) is malformed; a blank one means the broker has no mobile.
    """
    if raw_mobile is None or not raw_mobile.strip():
        return None
    phone = normalize_phone(raw_mobile)
    if not phone:
        # Nothing to mask: say how long it is, not what it says.
        shown, why = f"of {len(raw_mobile.strip())} characters", "no digits"
    elif len(phone) > PHONE_MAX_DIGITS:
        shown = mask_phone(phone)
        why = f"{len(phone)} digits, broker_phone.phone holds {PHONE_MAX_DIGITS}"
    else:
        return phone
    raise MalformedMobile([MalformedRow(broker_id, shown, why)])


def mask_number(phone: str) -> str:
    """Mask a normalized number for logs: its last 4 digits, none of a number that short."""
    return "*" * len(phone) if len(phone) <= 4 else mask_phone(phone)


def implausible_row(broker_id: int, phone: str) -> NotedRow | None:
    """Name a synced number too short or too long to be a phone number; None when plausible."""
    shortest, longest = PLAUSIBLE_DIGITS
    if shortest <= len(phone) <= longest:
        return None
    bound = f"fewer than {shortest}" if len(phone) < shortest else f"more than {longest}"
    return NotedRow(broker_id, mask_number(phone), f"{len(phone)} digits, {bound}: implausible")


def phones_for_page(
    rows: list[tuple[int, str, datetime]],
) -> tuple[dict[int, tuple[str | None, datetime]], list[MalformedRow]]:
    """Classify a page of (BrokerId, UserMobile, updated_datetime): usable rows and malformed ones."""
    result: dict[int, tuple[str | None, datetime]] = {}
    bad: list[MalformedRow] = []
    for broker_id, raw, updated in rows:
        try:
            result[int(broker_id)] = (phone_for_broker(int(broker_id), raw), updated)
        except MalformedMobile as exc:
            bad.extend(exc.rows)
    return result, bad


def full_resync_due(last_full: datetime | None, now: datetime, every_hours: int) -> bool:
    """A scheduled run rebuilds everything when the last full resync is ``every_hours`` old.

    Why: the source puts no bound on how late a long transaction commits, so a row
    stamped before the overlap can still appear; only a full pass is sure to see it.
    ``every_hours`` 0 turns the periodic resync off.
    """
    if every_hours <= 0:
        return False
    return last_full is None or now - last_full >= timedelta(hours=every_hours)


def to_source_time(moment: datetime) -> datetime:
    """Turn an aware instant (Airflow's UTC interval bound) into the source's naive local time."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; pass Airflow's aware data interval bounds")
    return moment.astimezone(SOURCE_TZ).replace(tzinfo=None)


def check_overlap(overlap_seconds: int) -> None:
    """Refuse an overlap too short for the late commits the broker system is known for."""
    if overlap_seconds < MIN_OVERLAP_SECONDS:
        raise ValueError(
            f"overlap {overlap_seconds}s is below the minimum {MIN_OVERLAP_SECONDS}s: "
            "late commits on the broker system would be missed"
        )


def source_window(
    start: datetime, end: datetime, overlap_seconds: int
) -> tuple[datetime, datetime]:
    """Return [start - overlap, end) in source local time, for an aware [start, end) interval."""
    check_overlap(overlap_seconds)
    if end < start:
        raise ValueError(f"data interval ends ({end}) before it starts ({start})")
    return to_source_time(start) - timedelta(seconds=overlap_seconds), to_source_time(end)
