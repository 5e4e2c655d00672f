"""Days of Asia/Shanghai on the database server's clock, and its times shown in Asia/Shanghai.

``start_time`` is Asia/Shanghai by contract; ``created_at``, ``received_at`` and the
other times the database writes are its server's clock (its ``time_zone``,
Asia/Shanghai in production, often UTC on a development machine). A day's
window is converted to that clock for the queries, and the times read back are
shifted to Asia/Shanghai for people, so the page is right whatever the zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TIMEZONE = ZoneInfo("Asia/Shanghai")
UTC_OFFSET = "+08:00"  # Asia/Shanghai has kept +08:00 since 1991
# Columns the database writes with its own clock (shifted for display).
DB_CLOCK_FIELDS = frozenset(
    {
        "acted_at", "created_at", "cursor_updated_at", "database_time", "done_at",
        "notified_at", "oldest_created_at", "received_at", "resolved_at", "since", "updated_at",
    }
)  # fmt: skip


def today() -> date:
    """Today in Asia/Shanghai (the default day of the page and of the metrics)."""
    return datetime.now(TIMEZONE).date()


@dataclass(frozen=True)
class Day:
    """A day of Asia/Shanghai and its window on the database clock (``db_window``)."""

    day: date
    db_start: datetime | None = None  # set by ``on_database_clock``

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time())

    @property
    def db_window(self) -> tuple[datetime, datetime]:
        start = self.db_start or self.start
        return start, start + timedelta(days=1)

    @property
    def shift(self) -> timedelta:
        """Asia/Shanghai time minus the database clock."""
        return self.start - (self.db_start or self.start)

    def on_database_clock(self, cur: Any) -> Day:
        cur.execute("SELECT CONVERT_TZ(%s, %s, @@session.time_zone)", (self.start, UTC_OFFSET))
        return Day(self.day, cur.fetchone()[0])


def shift_of(cur: Any) -> timedelta:
    """Asia/Shanghai time minus the database clock, now."""
    return Day(today()).on_database_clock(cur).shift


def in_shanghai(value: Any, shift: timedelta) -> Any:
    """``value`` (dicts and lists of them) with every database-clock time shifted to Asia/Shanghai."""
    if isinstance(value, list):
        return [in_shanghai(item, shift) for item in value]
    if isinstance(value, dict):
        return {
            key: (
                item + shift
                if key in DB_CLOCK_FIELDS and isinstance(item, datetime)
                else in_shanghai(item, shift)
            )
            for key, item in value.items()
        }
    return value
