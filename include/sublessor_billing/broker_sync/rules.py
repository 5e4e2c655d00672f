"""Rules of the broker phone sync that need no database: time windows and mobiles."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sublessor_billing.phone import mask_phone, normalize_phone

try:
    from zoneinfo import ZoneInfo

    SOURCE_TZ = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database: China has kept UTC+8 since 1991
    SOURCE_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# The overlap re-read before every interval: a long transaction on the broker
# system can commit a row whose updated_datetime is already in the past.
MIN_OVERLAP_SECONDS = 600

# A normalized broker mobile must look like a number a caller can dial from:
# an 11-digit mobile, or a landline with its area code (0 + 9 to 11 digits).
_PLAUSIBLE = re.compile(r"^(?:1\d{10}|0\d{9,11})$")


class MalformedMobile(ValueError):
    """A source row whose UserMobile has digits but is no plausible phone number."""

    def __init__(self, rows: list[tuple[int, str]]) -> None:
        self.broker_ids = [broker_id for broker_id, _ in rows]
        shown = ", ".join(
            f"BrokerId {bid} (UserMobile {mask_phone(raw)!s})" for bid, raw in rows[:10]
        )
        more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        super().__init__(
            f"anjuke_db.ajk_brokerextend has malformed UserMobile: {shown}{more}. "
            "It has digits but is neither an 11-digit mobile nor a landline with area code. "
            "Have the broker system correct (or empty) the row, then clear this task to retry: "
            "pages committed before it are re-applied idempotently."
        )


def phone_for_broker(broker_id: int, raw_mobile: str | None) -> str | None:
    """Return the broker's normalized mobile, None when it has none; raise when malformed."""
    phone = normalize_phone(raw_mobile)
    if not phone:
        return None
    if not _PLAUSIBLE.match(phone):
        raise MalformedMobile([(broker_id, raw_mobile or "")])
    return phone


def phones_for_page(
    rows: list[tuple[int, str, datetime]],
) -> dict[int, tuple[str | None, datetime]]:
    """Classify a page of (BrokerId, UserMobile, updated_datetime); report every malformed row at once."""
    result: dict[int, tuple[str | None, datetime]] = {}
    bad: list[tuple[int, str]] = []
    for broker_id, raw, updated in rows:
        try:
            result[int(broker_id)] = (phone_for_broker(int(broker_id), raw), updated)
        except MalformedMobile:
            bad.append((int(broker_id), raw))
    if bad:
        raise MalformedMobile(bad)
    return result


def to_source_time(moment: datetime) -> datetime:
    """Turn an aware instant (Airflow's UTC interval bound) into the source's naive local time."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; pass Airflow's aware data interval bounds")
    return moment.astimezone(SOURCE_TZ).replace(tzinfo=None)


def source_window(
    start: datetime, end: datetime, overlap_seconds: int
) -> tuple[datetime, datetime]:
    """Return [start - overlap, end) in source local time, for an aware [start, end) interval."""
    if overlap_seconds < MIN_OVERLAP_SECONDS:
        raise ValueError(
            f"overlap {overlap_seconds}s is below the minimum {MIN_OVERLAP_SECONDS}s: "
            "late commits on the broker system would be missed"
        )
    if end < start:
        raise ValueError(f"data interval ends ({end}) before it starts ({start})")
    return to_source_time(start) - timedelta(seconds=overlap_seconds), to_source_time(end)
